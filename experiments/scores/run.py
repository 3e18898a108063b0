r"""Experiment 3: Luong's attention scores, with and without input feeding (Luong et al. 2015, Table 4).

    python -m experiments.scores.run --preset cpu     # then: python -m experiments.scores.report

The Luong RNN (`configs/rnn_luong.py:score=X,feed=0|1`) with each score, dot, general,
concat and scaled_dot (additive is concat under another name, see attnjax/models/attention.py),
each with and without input feeding, trained from several seeds (`config.seed`) on
`en_fr_synth:quick`, with validation perplexity measured along the way (the curves show where
it flattens). The report gives the mean ± standard deviation of validation and test
perplexity and greedy test BLEU over the seeds, and sacreBLEU's paired bootstrap between the
best variant and each other. Workdirs go to `<out>/<preset>/<score>-feed<0|1>-seed<s>` (the
names `--list` prints); finished runs are skipped, interrupted ones resume. On another corpus:
`--config.data.name=files --config.data.files_dir=DIR` (any data field), applied to every run.

Presets:
  smoke  three tiny runs on numbers:fr for 3 steps: dot with input feeding (seeds 0 and 1) and
         general without (seed 0): seconds (tests/test_experiments.py).
  cpu    the config's model (embed 128, hidden 256), batch 64, 1,000 steps (the demo's
         validation perplexity: 1.98, 1.22, 1.15 at steps 500, 1,000, 1,500, so most of the
         fall is over by 1,000), seeds 0, 1 and 2: 24 runs, seed-major (every variant's seed 0
         first), so a run cut short still compares every variant. 6-8 minutes a run on 2
         cores (training, then 15 s of decoding 1,000 test sentences), about 3 hours in all.
  full   3,000 steps, seeds 0-4: 40 runs (a GPU).
"""

import sys

from experiments import common

SCORES = ("dot", "general", "concat", "scaled_dot")
SEEDS = {"cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)}
GRID = {  # (score, input feeding, seed)
    "smoke": [("dot", 1, 0), ("dot", 1, 1), ("general", 0, 0)],
    **{preset: [(score, feed, seed) for seed in seeds for score in SCORES for feed in (1, 0)]
       for preset, seeds in SEEDS.items()},
}
STEPS = {"smoke": 3, "cpu": 1000, "full": 3000}
EVALS = 5  # validation perplexity measured this many times along a run


def make_config(score: str, feed: int, seed: int, preset: str, data: dict | None = None):
  """The run's config; `data`: overrides of its data section (another corpus)."""
  config = common.load_config(f"configs/rnn_luong.py:score={score},feed={feed}")
  config.seed = seed
  steps = STEPS[preset]
  if preset == "smoke":
    config = common.make_tiny(config, "", steps)
  else:
    config.train.update(num_steps=steps, eval_every=steps // EVALS, eval_samples=0,
                        checkpoint_every=steps)
  config.data.update(data or {})
  return config


def run_name(score: str, feed: int, seed: int) -> str:
  return f"{score}-feed{feed}-seed{seed}"


def run_names(preset: str) -> list[str]:
  return [run_name(*cell) for cell in GRID[preset]]


def main(argv=None) -> int:
  args = common.parse(common.parser("scores", __doc__), argv)
  root = common.runs_dir(args)
  cells = {run_name(*cell): cell for cell in GRID[args.preset]}
  from experiments.scores import report

  def do(name):
    workdir = root / name
    common.train(make_config(*cells[name], args.preset, args.data), workdir, progress=args.preset != "smoke")
    common.score_test(workdir, width=10, batch_size=256 if args.preset == "smoke" else 100)

  return common.run_all("scores", list(cells), do, args,
                        lambda: report.write(root, args.preset, args.report_dir))


if __name__ == "__main__":
  sys.exit(main())
