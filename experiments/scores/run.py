r"""Experiment 3: Luong's attention scores, with and without input feeding (Luong et al. 2015, Table 4).

    python -m experiments.scores.run --preset cpu     # then: python -m experiments.scores.report

The Luong RNN (`configs/rnn_luong.py:score=X,feed=0|1`) with each score, dot, general,
concat and additive, each with and without input feeding, trained from several seeds
(`config.seed`) on `en_fr_synth:quick`; validation perplexity at the last step and greedy
test BLEU, reported as mean ± standard deviation over the seeds. Workdirs go to
`<out>/<preset>/<score>-feed<0|1>-seed<s>`; finished runs are skipped, interrupted ones resume.

Presets:
  smoke  three tiny runs on numbers:fr for 3 steps: dot with input feeding (seeds 0 and 1) and
         general without (seed 0): seconds (tests/test_experiments.py).
  cpu    the config's model (embed 128, hidden 256), batch 64, 500 steps, seeds 0 and 1: 16 runs.
         At 500 steps the default model is still learning fast (its validation BLEU went from
         57 at step 500 to 89 at step 1,000 in a run of configs/default.py), so this compares
         how fast each variant learns. Expected wall time, an estimate from that run's step rate
         on 2 shared cores: 5-6 minutes per run (training, compiling one step per length
         bucket, 1,000 test sentences), about 1 h 30 min in all.
  full   3,000 steps (the config's default), seeds 0, 1 and 2: 24 runs (a GPU).
"""

import sys

from experiments import common

SCORES = ("dot", "general", "concat", "additive")
SEEDS = {"cpu": (0, 1), "full": (0, 1, 2)}
GRID = {  # (score, input feeding, seed)
    "smoke": [("dot", 1, 0), ("dot", 1, 1), ("general", 0, 0)],
    **{preset: [(score, feed, seed) for score in SCORES for feed in (1, 0) for seed in seeds]
       for preset, seeds in SEEDS.items()},
}
STEPS = {"smoke": 3, "cpu": 500, "full": 3000}


def make_config(score: str, feed: int, seed: int, preset: str, data_dir: str = ""):
  config = common.load_config(f"configs/rnn_luong.py:score={score},feed={feed}")
  config.seed = seed
  steps = STEPS[preset]
  if preset == "smoke":
    return common.make_tiny(config, data_dir, steps)
  if data_dir:
    config.data.data_dir = data_dir
  config.train.update(num_steps=steps, eval_every=steps, eval_samples=100,
                      checkpoint_every=min(500, steps))
  return config


def run_name(score: str, feed: int, seed: int) -> str:
  return f"{score}-feed{feed}-seed{seed}"


def main(argv=None) -> int:
  args = common.parser("scores", __doc__).parse_args(argv)
  root = common.runs_dir(args)
  grid = GRID[args.preset]
  for i, (score, feed, seed) in enumerate(grid, 1):
    print(f"[{i}/{len(grid)}] {run_name(score, feed, seed)}", flush=True)
    workdir = root / run_name(score, feed, seed)
    common.train(make_config(score, feed, seed, args.preset, args.data_dir), workdir,
                 progress=args.preset != "smoke")
    common.score_test(workdir, width=10, batch_size=256 if args.preset == "smoke" else 100)
  from experiments.scores import report
  report.write(root, args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
