"""Evaluators: named measurements of a trained workdir, each made once per checkpoint.

An evaluator is a function `(workdir, step, **arguments) -> dict of figures` (`step`: the
checkpoint, None for the newest). `evaluate(workdir, name, step, **arguments)` runs it, or reads
it back: the result is kept in the workdir, in the evaluator's file, with the training step and
the arguments it was made with, and is valid while both match (an input file named in the
arguments counts by its contents). `kept` is that rule, for figures kept elsewhere too (an
experiment's `runs_<preset>/`). The command line's `eval` and `compare`, every experiment and
a user's grid measure through them: asking twice costs once, and a run trained further is
measured again.

For experiments' reports (`REPORTED`, the figures a grid can ask for):
  bleu        greedy test BLEU, chrF, BLEU per source-length bin and teacher-forced test
              perplexity (`experiment_test.json`; the sources, references and hypotheses in
              `experiment_test.tsv`)
  attention   AER of the teacher-forced attention against the gold links, argmax and half the
              mass, with the monotone diagonal's (None where the corpus has no gold, or the
              model no attention), and how sharp the attention is (`experiment_attention.json`)
For `attnjax eval` and `compare` (a split, or --src/--ref files, at a beam):
  scores      BLEU, chrF and BLEU by source length (`eval_<split>.json`; the hypotheses in
              `hyp_<split>.txt`)
  alignment   AER of the teacher-forced attention against gold alignments, Shift-Att's with
              `shift` (`alignment_<split>[.shifted].json`)
  intervened  teacher-forced perplexity and BLEU with the attention replaced or heads switched
              off, beside the model's own perplexity (`eval_<split>.<intervention>.json`)
"""

import hashlib
import json
import pathlib
import time
from typing import Callable, NamedTuple

from attnjax.errors import MismatchError, UsageError

SHARPNESS_SENTENCES = 64  # the shortest test sources, whose greedy attention `largest_weight` reads


class Evaluator(NamedTuple):
  fn: Callable[..., dict]     # fn(workdir, step, **arguments) -> figures
  file: Callable[[dict], str]  # the name of the file it is kept in, in the workdir, from its arguments
  timing: tuple = ()          # arguments that change only how fast it runs or what it prints
  files: tuple = ()           # arguments naming input files, whose contents its figures depend on


def step_of(workdir) -> int:
  """The training step a workdir's figures belong to: its finished run's, else its newest checkpoint's."""
  from attnjax.config import ConfigError
  workdir = pathlib.Path(workdir)
  done = workdir / "train_done.json"
  if done.exists():
    return json.loads(done.read_text())["step"]
  from attnjax import checkpoint
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


def kept(path, step: int, arguments: dict, make: Callable[[], dict], indent: int = 2) -> dict:
  """The figures kept at `path` if made at training step `step` with `arguments`; else
  `make()`'s, kept there with both. The one rule by which every measurement is made once."""
  path = pathlib.Path(path)
  before = read_kept(path, step, arguments)
  if before is not None:
    print(f"  {path}: measured before at step {step} with these arguments, read back", flush=True)
    return before
  result = {**make(), "step": step, "arguments": arguments}
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(result, indent=indent) + "\n")
  return result


def evaluate(workdir, name: str, step: int | None = None, **arguments) -> dict:
  """Evaluator `name`'s figures for `workdir`'s model at checkpoint `step` (default: its
  current step), made or read back. An argument given as None counts as one not given: the
  evaluator's default."""
  from attnjax.config import ConfigError
  if name not in EVALUATORS:
    raise ConfigError(f"no evaluator {name!r}; there are {', '.join(EVALUATORS)}")
  evaluator = EVALUATORS[name]
  workdir = pathlib.Path(workdir)
  arguments = {k: v for k, v in arguments.items() if v is not None}
  key = {k: v for k, v in sorted(arguments.items()) if k not in evaluator.timing}
  for k in evaluator.files:
    if key.get(k) and pathlib.Path(key[k]).is_file():  # a missing file is the evaluator's error to say
      key[k] = {"path": str(key[k]), "sha256": hashlib.sha256(pathlib.Path(key[k]).read_bytes()).hexdigest()}
  return kept(path_of(workdir, name, **arguments), step_of(workdir) if step is None else step, key,
              lambda: evaluator.fn(workdir, step, **arguments))


def path_of(workdir, name: str, **arguments) -> pathlib.Path:
  """The file `evaluate(workdir, name, **arguments)` keeps its figures in."""
  return pathlib.Path(workdir) / EVALUATORS[name].file(arguments)


def test_bleu(workdir: pathlib.Path, step: int | None = None, width: int = 5, batch_size: int = 64,
              test_data: dict | None = None) -> dict:
  """Greedy BLEU of the test split, per `width`-token source-length bin too, and test perplexity.

  `test_data`: fields of the data section whose test split to translate (default: the
  workdir's own corpus). Sources are decoded sorted by length, so each batch is padded to
  about its own length.
  """
  from attnjax.data import pipeline
  from attnjax.data.prepare import prepare
  from attnjax.infer import trained as trained_lib
  trained = trained_lib.load(workdir, step)
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


def attention(workdir: pathlib.Path, step: int | None = None, data_dir: str = "") -> dict:
  """AER against the gold (`attnjax.analysis.gold`) and `largest_weight` on the shortest test
  sources; `data_dir`: where en_fr_synth's gold corpus is prepared (default: the config's)."""
  from attnjax.analysis.gold import alignment_errors, gold_for
  from attnjax.data import pipeline
  from attnjax.data.prepare import prepare
  from attnjax.infer import trained as trained_lib
  trained = trained_lib.load(workdir, step)
  pairs, gold = gold_for(trained, data_dir)
  errors = alignment_errors(trained, pairs, gold) if pairs is not None else None
  data = trained.config.data
  sources = sorted((src for src, _ in pipeline.load_pairs(data, "test", prepare(data, progress=False))),
                   key=lambda src: len(src.split()))  # as `test_bleu` decodes them
  return {"largest_weight": largest_weight(trained, sources[:SHARPNESS_SENTENCES]),
          "aer": errors and errors["aer"]["argmax"], "aer_mass": errors and errors["aer"]["mass"], "diagonal": errors and errors["diagonal"]}


def pairs_of(data_cfg, split: str = "test", src: str | None = None, ref: str | None = None,
             progress: bool = False) -> tuple[list[tuple[str, str]], str]:
  """(source, reference) pairs and what they are: of the `src`/`ref` files when given (named
  by the source file), else of `split` of `data_cfg`'s corpus (named by the split)."""
  from attnjax.data import builders, pipeline
  from attnjax.data.prepare import prepare
  if bool(src) != bool(ref):
    raise UsageError("--src and --ref go together: the sources and their references")
  if src:
    sources, references = builders.read_text(src), builders.read_text(ref)
    if len(sources) != len(references):
      raise MismatchError(f"{ref} has {len(references):,} lines but {src} has {len(sources):,}")
    if not sources:
      raise UsageError(f"{src} is empty")
    return list(zip(sources, references)), pathlib.Path(src).name
  return pipeline.load_pairs(data_cfg, split, prepare(data_cfg, progress=progress)), split


def _named(arguments: dict) -> str:
  """What `pairs_of` names the pairs the arguments choose, and whose corpus they are of when not
  the workdir's own (`compare`'s second system reads the first's)."""
  name = pathlib.Path(arguments["src"]).name if arguments.get("src") else arguments.get("split", "test")
  return name + (f".of-{pathlib.Path(arguments['corpus']).name}" if arguments.get("corpus") else "")


def _chosen_pairs(trained, split, src, ref, limit, progress, corpus=None):
  from attnjax.workdir import load_config
  data = load_config(corpus).data if corpus else trained.config.data
  pairs, _ = pairs_of(data, split, src, ref, progress)
  return pairs[:limit] if limit else pairs


def _write_hypotheses(workdir: pathlib.Path, name: str, hypotheses: list[str]) -> str:
  (workdir / f"hyp_{name}.txt").write_text("".join(h + "\n" for h in hypotheses))
  return f"hyp_{name}.txt"


def scores(workdir: pathlib.Path, step: int | None = None, split: str = "test", src: str | None = None,
           ref: str | None = None, limit: int = 0, beam: int | None = None, corpus: str | None = None,
           progress: bool = False) -> dict:
  """BLEU and chrF with sacreBLEU's signatures and BLEU by source length of the model's
  translations (at `beam`, default the config's) of `split` or of the `src`/`ref` files, the
  first `limit` pairs (0: all); `corpus`: a workdir whose corpus's split to read instead of
  this one's. The hypotheses go to `hyp_<name>.txt`, one a line, named under 'hypotheses'."""
  from attnjax.infer import trained as trained_lib
  trained = trained_lib.load(workdir, step)
  report = trained.evaluate(_chosen_pairs(trained, split, src, ref, limit, progress, corpus), beam)
  hypotheses = report.pop("hypotheses")
  name = _named({"split": split, "src": src, "corpus": corpus})
  return {**report, "split": name, "beam": beam or trained.config.decode.beam_size,
          "hypotheses": _write_hypotheses(workdir, name, hypotheses)}


def alignment(workdir: pathlib.Path, step: int | None = None, split: str = "test", src: str | None = None,
              ref: str | None = None, gold: str | None = None, limit: int = 0, shift: bool = False,
              progress: bool = False) -> dict:
  """`Trained.alignment_error` of the teacher-forced attention on `split` against the corpus's
  gold alignments, or on the `src`/`ref` files against the `gold` file (a Pharaoh line per
  pair); with `shift`, Shift-Att's (step j+1 read as word j's)."""
  from attnjax.data import builders, pipeline
  from attnjax.data.prepare import prepare
  from attnjax.infer import trained as trained_lib
  if bool(gold) != bool(src):
    raise UsageError("--gold is for --src/--ref files; a split's gold comes with the corpus" if gold else
                     "--alignment with --src/--ref needs --gold, the gold alignment of each pair")
  trained = trained_lib.load(workdir, step)
  data = trained.config.data
  pairs, name = pairs_of(data, split, src, ref, progress)
  if gold:
    links = builders.read_text(gold)
    if len(links) != len(pairs):
      raise MismatchError(f"{gold} has {len(links):,} lines but {src} has {len(pairs):,}")
  else:
    links = pipeline.load_alignments(data, split, prepare(data, progress=progress))
    if links is None:
      raise UsageError(f"{data.name} has no gold word alignments (en_fr_synth has); "
                       "give --src, --ref and --gold")
  if limit:
    pairs, links = pairs[:limit], links[:limit]
  try:
    report = trained.alignment_error(pairs, links, shift=shift)
  except MismatchError as error:  # a malformed gold line, or links past their sentences
    where = gold or f"the gold alignments of {data.name}'s {name} split"
    raise MismatchError(f"{where}: {error}") from None
  return {**report, "split": name}


def _intervention(spec: str, seed: int):
  from attnjax.models import intervention as intervention_lib
  try:
    intervention, heads = intervention_lib.from_spec(spec, seed)
  except ValueError as err:
    raise UsageError(str(err)) from None
  return intervention, heads, intervention_lib.describe(intervention, heads)


def intervened(workdir: pathlib.Path, step: int | None = None, intervene: str = "uniform",
               intervention_seed: int = 0, split: str = "test", src: str | None = None,
               ref: str | None = None, limit: int = 0, beam: int | None = None,
               progress: bool = False) -> dict:
  """The model with its attention replaced or heads switched off (`intervene`, as
  `attnjax.models.intervention.from_spec` reads it): the teacher-forced perplexity of `split`
  under it and as trained, and BLEU as `scores` measures it (not for `gold`, which is known
  for the reference only and cannot decode)."""
  from attnjax.infer import trained as trained_lib
  intervention, heads, name = _intervention(intervene, intervention_seed)
  gold = intervention is not None and intervention.kind == "gold"
  if gold and src:
    raise UsageError("--intervene gold reads the corpus's gold alignments: score a --split")
  trained = trained_lib.load(workdir, step)
  report = {"intervention": name}
  if not src:
    report.update(split=split,
                  perplexity=trained.perplexity(trained.config.data, split, intervention, heads),
                  own_perplexity=trained.perplexity(trained.config.data, split))
  if not gold:
    pairs = _chosen_pairs(trained, split, src, ref, limit, progress)
    figures = trained.evaluate(pairs, beam, intervention=intervention, heads=heads)
    hypotheses = figures.pop("hypotheses")
    where = _named({"split": split, "src": src})
    report.update(figures, split=where, beam=beam or trained.config.decode.beam_size,
                  hypotheses=_write_hypotheses(workdir, f"{where}.{name}", hypotheses))
  return report


def _intervened_file(arguments: dict) -> str:
  return f"eval_{_named(arguments)}.{_intervention(arguments['intervene'], arguments.get('intervention_seed', 0))[2]}.json"


EVALUATORS = {
    "bleu": Evaluator(test_bleu, lambda arguments: "experiment_test.json", timing=("batch_size",)),
    "attention": Evaluator(attention, lambda arguments: "experiment_attention.json"),
    "scores": Evaluator(scores, lambda arguments: f"eval_{_named(arguments)}.json", timing=("progress",),
                        files=("src", "ref")),
    "alignment": Evaluator(alignment, lambda arguments: f"alignment_{_named(arguments)}"
                           f"{'.shifted' if arguments.get('shift') else ''}.json",
                           timing=("progress",), files=("src", "ref", "gold")),
    "intervened": Evaluator(intervened, _intervened_file, timing=("progress",), files=("src", "ref")),
}
REPORTED = ("bleu", "attention")  # the evaluators whose figures experiments' and grids' reports read
