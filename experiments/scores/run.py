r"""Experiment 3: Luong's attention scores, global and local, with and without input feeding
(Luong et al. 2015, Tables 4 and 6).

    python -m experiments.scores.run --preset cpu     # then: python -m experiments.scores.report

The Luong RNN (`configs/rnn_luong.py:score=X,feed=0|1`) with global attention and each score,
dot, general, concat and scaled_dot (additive is concat under another name, see
attnjax/models/attention.py), and with local-m and local-p attention and the `general` score
(`local=m|p`, Luong's best), each with and without input feeding, trained from several seeds
(`config.seed`) on `en_fr_synth:quick`, with validation perplexity measured along the way (the
curves show where it flattens). After training, each run is scored on the test set (greedy
BLEU, perplexity) and its teacher-forced attention against the corpus's gold word alignments
(AER, where the corpus has them) and for sharpness (the largest weight per target piece). The
report gives the mean ± standard deviation over the seeds, and sacreBLEU's paired bootstrap
between the best variant and each other. Workdirs go to
`<out>/<preset>/<score>[-local<m|p>]-feed<0|1>-seed<s>` (the names `--list` prints); finished
runs are skipped, interrupted ones resume. Each finished run's result files (no checkpoints)
are kept in `<report_dir>/runs_<preset>/<name>/`, from which the report is built. On another corpus: `--config.data.name=files
--config.data.files_dir=DIR` (any data field), applied to every run.

Presets:
  smoke  four tiny runs on numbers:fr for 3 steps: dot with input feeding (seeds 0 and 1),
         general without (seed 0) and local-p general with (seed 0): seconds
         (tests/test_experiments.py).
  cpu    the config's model (embed 128, hidden 256), batch 64, 1,000 steps (the demo's
         validation perplexity: 1.98, 1.22, 1.15 at steps 500, 1,000, 1,500, so most of the
         fall is over by 1,000), seeds 0, 1 and 2: 36 runs (24 global, 12 local), seed-major
         (every variant's seed 0 first), so a run cut short still compares every variant.
         6-8 minutes a run on 2 cores (training, then about 30 s of decoding and aligning
         1,000 test sentences), about 4 hours in all: `--only` splits them across sessions.
         Then minGRU with Luong's general score after its cells (`configs/rnn_min.py`, no
         input feeding: `mingru_general-feed0-seed<s>`), the same steps and seeds: 3 runs.
  full   3,000 steps, seeds 0-4: 60 runs and 5 of minGRU (a GPU).
"""

import json
import sys

from experiments import common
from experiments.scores import report

SCORES = ("dot", "general", "concat", "scaled_dot")
VARIANTS = [(score, "") for score in SCORES] + [("general", "m"), ("general", "p")]  # (score, local)
SEEDS = {"cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)}
# Other models with Luong's global attention, named as a score so that their runs group and
# compare as the variants do: minGRU with the general score, read after the cells (no feeding).
MODELS = {"mingru_general": "configs/rnn_min.py:cell=gru,attention=luong"}
GRID = {  # (score, local, input feeding, seed); the other models after Luong's, seed-major too
    "smoke": [("dot", "", 1, 0), ("dot", "", 1, 1), ("general", "", 0, 0), ("general", "p", 1, 0)],
    **{preset: [(score, local, feed, seed) for seed in seeds for score, local in VARIANTS
                for feed in (1, 0)] + [(model, "", 0, seed) for seed in seeds for model in MODELS]
       for preset, seeds in SEEDS.items()},
}
STEPS = {"smoke": 3, "cpu": 1000, "full": 3000}
EVALS = 5  # validation perplexity measured this many times along a run


def make_config(score: str, local: str, feed: int, seed: int, preset: str, data: dict | None = None):
  """The run's config; `data`: overrides of its data section (another corpus)."""
  config = common.load_config(MODELS[score] if score in MODELS else
                              f"configs/rnn_luong.py:score={score},feed={feed},local={local or 'global'}")
  config.seed = seed
  steps = STEPS[preset]
  if preset == "smoke":
    config = common.make_tiny(config, "", steps)
  else:
    config.train.update(num_steps=steps, eval_every=steps // EVALS, eval_samples=0,
                        checkpoint_every=steps)
  config.data.update(data or {})
  return config


def run_name(score: str, local: str, feed: int, seed: int) -> str:
  return f"{score}{'-local' + local if local else ''}-feed{feed}-seed{seed}"


def run_names(preset: str) -> list[str]:
  return [run_name(*cell) for cell in GRID[preset]]




def largest_weight(workdir) -> float:
  """How sharp the attention is: the largest share of a target piece's weight on one source
  piece (1 = all on one piece, 1/S = spread evenly), mean over the pieces of the greedy
  translations of the first `report.SHARPNESS_SENTENCES` test sources. A share of the row's sum, as
  local-p's weights sum to less than 1 (for the others, the row sums to 1)."""
  import attnjax
  import numpy as np
  lines = (workdir / "experiment_test.tsv").read_text().splitlines()
  sources = [line.split("\t")[0] for line in lines[:report.SHARPNESS_SENTENCES]]
  translations = attnjax.load(workdir).alignments(sources, beam=1, batch_size=report.SHARPNESS_SENTENCES)
  shares = [t.alignment[:, 0, 0, :] / np.maximum(t.alignment[:, 0, 0, :].sum(-1, keepdims=True), 1e-12)
            for t in translations]
  return float(np.mean([share.max(-1).mean() for share in shares]))


def measure_attention(workdir, data_dir: str = "") -> dict:
  """AER of the teacher-forced attention against the gold (argmax and half the mass; None
  where the corpus has none) and `largest_weight`, kept in `experiment_attention.json`."""
  path = workdir / "experiment_attention.json"
  step = json.loads((workdir / "train_done.json").read_text())["step"]
  if path.exists() and json.loads(path.read_text())["step"] == step:
    return json.loads(path.read_text())
  import attnjax
  from attnjax.analysis.gold import alignment_errors, gold_for
  trained = attnjax.load(workdir)
  pairs, gold = gold_for(trained, data_dir)
  errors = alignment_errors(trained, pairs, gold) if pairs is not None else None
  result = {"step": step, "largest_weight": largest_weight(workdir),
            "aer": errors and errors["aer"]["argmax"], "aer_mass": errors and errors["aer"]["mass"],
            "diagonal": errors and errors["diagonal"]}
  path.write_text(json.dumps(result, indent=2) + "\n")
  return result


def main(argv=None) -> int:
  args = common.parse(common.parser("scores", __doc__), argv)
  root = common.runs_dir(args)
  cells = {run_name(*cell): cell for cell in GRID[args.preset]}

  def do(name):
    workdir = root / name
    common.train(make_config(*cells[name], args.preset, args.data), workdir, progress=args.preset != "smoke")
    common.score_test(workdir, width=10, batch_size=256 if args.preset == "smoke" else 100)
    measure_attention(workdir, args.data_dir)
    kept = report.results_dir(args.report_dir, args.preset)
    common.keep_results(workdir, kept, dict(zip(("score", "local", "feed", "seed"), cells[name])))
    (kept / "grid.json").write_text(json.dumps({"runs": list(cells)}, indent=2) + "\n")

  return common.run_all("scores", list(cells), do, args, lambda: report.write(
      report.results_dir(args.report_dir, args.preset), args.preset, args.report_dir))


if __name__ == "__main__":
  sys.exit(main())
