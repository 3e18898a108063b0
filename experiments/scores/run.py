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

from attnjax import evaluators
from experiments import common
from experiments.scores import report
from experiments.shared import LUONG_LIKE, SCORES, luong_config as make_config, luong_run as run_name

VARIANTS = [(score, "") for score in SCORES] + [("general", "m"), ("general", "p")]  # (score, local)
SEEDS = {"cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)}
GRID = {  # (score, local, input feeding, seed); the other models after Luong's, seed-major too
    "smoke": [("dot", "", 1, 0), ("dot", "", 1, 1), ("general", "", 0, 0), ("general", "p", 1, 0)],
    **{preset: [(score, local, feed, seed) for seed in seeds for score, local in VARIANTS
                for feed in (1, 0)] + [(model, "", 0, seed) for seed in seeds for model in LUONG_LIKE]
       for preset, seeds in SEEDS.items()},
}


def run_names(preset: str) -> list[str]:
  return [run_name(*cell) for cell in GRID[preset]]



def main(argv=None) -> int:
  args = common.parse(common.parser("scores", __doc__), argv)
  root = common.runs_dir(args)
  cells = {run_name(*cell): cell for cell in GRID[args.preset]}

  def do(name):
    workdir = root / name
    common.train(make_config(*cells[name], args.preset, args.data), workdir, progress=args.preset != "smoke")
    evaluators.evaluate(workdir, "bleu", width=10, batch_size=256 if args.preset == "smoke" else 100)
    evaluators.evaluate(workdir, "attention", data_dir=args.data_dir)
    kept = report.results_dir(args.report_dir, args.preset)
    common.keep_results(workdir, kept, dict(zip(("score", "local", "feed", "seed"), cells[name])))
    (kept / "grid.json").write_text(json.dumps({"runs": list(cells)}, indent=2) + "\n")

  return common.run_all("scores", list(cells), do, args, lambda: report.write(
      report.results_dir(args.report_dir, args.preset), args.preset, args.report_dir))


if __name__ == "__main__":
  sys.exit(main())
