"""Evaluators: named measurements of a trained workdir, each made once per checkpoint.

An evaluator is a function `(workdir, **arguments) -> dict of figures`. `evaluate(workdir,
name, **arguments)` runs it, or reads it back: the result is kept in the workdir as
`experiment_<file>.json` with the training step and the arguments it was made with, and is
valid while both match. An experiment, a report and a user's grid can all ask for the same
figures, and a run trained further is measured again.

  bleu       greedy test BLEU, chrF, BLEU per source-length bin and teacher-forced test
             perplexity (`experiment_test.json`; the sources, references and hypotheses in
             `experiment_test.tsv`)
  attention  AER of the teacher-forced attention against the gold links, argmax and half the
             mass, with the monotone diagonal's (None where the corpus has no gold, or the
             model no attention), and how sharp the attention is (`experiment_attention.json`)
"""

import json
import pathlib
import time
from typing import Callable, NamedTuple

SHARPNESS_SENTENCES = 64  # the shortest test sources, whose greedy attention `largest_weight` reads


class Evaluator(NamedTuple):
  fn: Callable[..., dict]
  file: str               # experiment_<file>.json in the workdir
  timing: tuple = ()      # arguments that change only how fast it runs, not its figures


def step_of(workdir) -> int:
  """The training step a workdir's figures belong to: its finished run's, else its newest checkpoint's."""
  workdir = pathlib.Path(workdir)
  done = workdir / "train_done.json"
  if done.exists():
    return json.loads(done.read_text())["step"]
  from attnjax import checkpoint
  from attnjax.config import ConfigError
  step = checkpoint.manager(workdir, read_only=True).latest_step() if (workdir / "checkpoints").is_dir() else None
  if step is None:
    raise ConfigError(f"{workdir}: no checkpoint to evaluate; train it first")
  return step


def read_kept(path: pathlib.Path, step: int, arguments: dict) -> dict | None:
  """The figures kept at `path` if they were made at training step `step` with `arguments`
  (which also name what was measured), else None: a run trained further, or asked for other
  figures, is measured again."""
  if not path.exists():
    return None
  kept = json.loads(path.read_text())
  return kept if kept.get("step") == step and kept.get("arguments") == arguments else None


def evaluate(workdir, name: str, **arguments) -> dict:
  """Evaluator `name`'s figures for `workdir`'s model at its current step, made or read back."""
  from attnjax.config import ConfigError
  if name not in EVALUATORS:
    raise ConfigError(f"no evaluator {name!r}; there are {', '.join(EVALUATORS)}")
  evaluator = EVALUATORS[name]
  workdir = pathlib.Path(workdir)
  path = workdir / f"experiment_{evaluator.file}.json"
  key = {k: v for k, v in sorted(arguments.items()) if k not in evaluator.timing}
  step = step_of(workdir)
  kept = read_kept(path, step, key)
  if kept is not None:
    return kept
  result = {**evaluator.fn(workdir, **arguments), "step": step, "arguments": key}
  path.write_text(json.dumps(result, indent=2) + "\n")
  return result


def test_bleu(workdir: pathlib.Path, width: int = 5, batch_size: int = 64, test_data: dict | None = None) -> dict:
  """Greedy BLEU of the test split, per `width`-token source-length bin too, and test perplexity.

  `test_data`: fields of the data section whose test split to translate (default: the
  workdir's own corpus). Sources are decoded sorted by length, so each batch is padded to
  about its own length.
  """
  from attnjax.data import pipeline
  from attnjax.data.prepare import prepare
  from attnjax.infer import trained as trained_lib
  trained = trained_lib.load(workdir)
  data_cfg = trained.config.data
  if test_data:
    data_cfg = data_cfg.copy_and_resolve_references()
    data_cfg.update(test_data)
  pairs = pipeline.load_pairs(data_cfg, "test", prepare(data_cfg, progress=False))
  pairs.sort(key=lambda pair: len(pair[0].split()))
  start = time.perf_counter()
  report = trained.evaluate(pairs, beam=1, bucket_width=width, batch_size=batch_size)
  hyps = report.pop("hypotheses")
  report.update(test_data=data_cfg.name, decode_seconds=round(time.perf_counter() - start, 1),
                ppl=trained.perplexity(data_cfg, "test"))
  (workdir / "experiment_test.tsv").write_text("".join(f"{s}\t{r}\t{h}\n" for (s, r), h in zip(pairs, hyps)))
  print(f"  {workdir}: test BLEU {report['bleu']:.2f} on {len(pairs)} sentences "
        f"({report['decode_seconds']:.0f} s)", flush=True)
  return report


def largest_weight(trained, sources: list[str]) -> float | None:
  """How sharp the attention is: the largest share of a target piece's weight on one source
  piece (1 = all on one piece, 1/S = spread evenly), mean over the pieces of the greedy
  translations of `sources`; None for a model without attention. A share of the row's sum, as
  local-p's weights sum to less than 1 (for the others, the row sums to 1)."""
  import numpy as np
  translations = trained.alignments(sources, beam=1, batch_size=len(sources))
  if translations[0].alignment is None:
    return None
  shares = [t.alignment[:, 0, 0, :] / np.maximum(t.alignment[:, 0, 0, :].sum(-1, keepdims=True), 1e-12)
            for t in translations]
  return float(np.mean([share.max(-1).mean() for share in shares]))


def attention(workdir: pathlib.Path, data_dir: str = "") -> dict:
  """AER against the gold (`attnjax.analysis.gold`) and `largest_weight` on the shortest test
  sources; `data_dir`: where en_fr_synth's gold corpus is prepared (default: the config's)."""
  from attnjax.analysis.gold import alignment_errors, gold_for
  from attnjax.data import pipeline
  from attnjax.data.prepare import prepare
  from attnjax.infer import trained as trained_lib
  trained = trained_lib.load(workdir)
  pairs, gold = gold_for(trained, data_dir)
  errors = alignment_errors(trained, pairs, gold) if pairs is not None else None
  data = trained.config.data
  sources = sorted((src for src, _ in pipeline.load_pairs(data, "test", prepare(data, progress=False))),
                   key=lambda src: len(src.split()))  # as `test_bleu` decodes them
  return {"largest_weight": largest_weight(trained, sources[:SHARPNESS_SENTENCES]),
          "aer": errors and errors["aer"]["argmax"], "aer_mass": errors and errors["aer"]["mass"], "diagonal": errors and errors["diagonal"]}


EVALUATORS = {
    "bleu": Evaluator(test_bleu, "test", timing=("batch_size",)),
    "attention": Evaluator(attention, "attention"),
}
