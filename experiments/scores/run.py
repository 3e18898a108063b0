r"""Experiment 3: Luong's attention scores, with and without input feeding (Luong et al. 2015, Table 4).

    python -m experiments.scores.run --preset cpu     # then: python -m experiments.scores.report

The Luong RNN (`configs/rnn_luong.py:score=X,feed=0|1`) with each score, dot, general,
concat and scaled_dot (additive is concat under another name, see attnjax/models/attention.py),
each with and without input feeding, trained from several seeds (`config.seed`) on
`en_fr_synth:quick`, with validation perplexity measured along the way (the curves show where
it flattens). The report gives the mean ± standard deviation of validation and test
perplexity and greedy test BLEU over the seeds, and sacreBLEU's paired bootstrap between the
best variant and each other. Workdirs go to `<out>/<preset>/<score>-feed<0|1>-seed<s>`;
finished runs are skipped, interrupted ones resume, and the report is rewritten after each run.

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


def make_config(score: str, feed: int, seed: int, preset: str, data_dir: str = ""):
  config = common.load_config(f"configs/rnn_luong.py:score={score},feed={feed}")
  config.seed = seed
  steps = STEPS[preset]
  if preset == "smoke":
    return common.make_tiny(config, data_dir, steps)
  if data_dir:
    config.data.data_dir = data_dir
  config.train.update(num_steps=steps, eval_every=steps // EVALS, eval_samples=0,
                      checkpoint_every=steps)
  return config


def run_name(score: str, feed: int, seed: int) -> str:
  return f"{score}-feed{feed}-seed{seed}"


def main(argv=None) -> int:
  args = common.parser("scores", __doc__).parse_args(argv)
  root = common.runs_dir(args)
  grid = GRID[args.preset]
  from experiments.scores import report
  for i, (score, feed, seed) in enumerate(grid, 1):
    print(f"[{i}/{len(grid)}] {run_name(score, feed, seed)}", flush=True)
    workdir = root / run_name(score, feed, seed)
    common.train(make_config(score, feed, seed, args.preset, args.data_dir), workdir,
                 progress=args.preset != "smoke")
    common.score_test(workdir, width=10, batch_size=256 if args.preset == "smoke" else 100)
    report.write(root, args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
