r"""Experiment 2: how attention aligns (Bahdanau et al. 2015, Figure 3; Och & Ney 2003).

    python -m experiments.alignments.run --preset cpu                       # the models below
    python -m experiments.alignments.run --preset cpu --workdirs runs/demo  # any trained workdirs

Two parts, both from each workdir's model:
1. **Alignment error rate** of the teacher-forced cross-attention against en_fr_synth's gold
   word alignments (`attnjax.data.synth.aligned`) on the 1,000 test pairs of
   `en_fr_synth:quick`: links by argmax per target word and by half the mass, for the
   Transformer per layer and head as well (a heatmap), beside the monotone diagonal.
2. **Heatmaps** of a fixed list of sentences, one per phenomenon (post-nominal adjectives,
   ne ... pas with the passé composé, an object pronoun before the verb, the passive, two
   clauses), greedy, at word level: a source word's weight is the sum over its pieces.

Workdirs, unless given with --workdirs:
  smoke  a tiny RNNsearch and a tiny Transformer, trained here on numbers:fr for 3 steps;
         numbers has no gold alignments, so the monotone diagonal stands in as the gold to run
         the AER code (its figures mean nothing).
  cpu    RNNsearch-50 of experiment 1, Luong's models of experiment 3 (seed 0 of each score,
         with and without input feeding) and a Transformer (`configs/transformer.py:size=small`,
         2 layers of 4 heads) trained here for 1,500 steps on en_fr_synth:quick. Heatmaps for
         RNNsearch-50, Luong general with feeding and the Transformer; AER for all. Expected
         wall time on 2 cores: the Transformer's training (about 10 minutes) and a few
         seconds a model.
  full   the same with experiment 1's and 3's full presets.
The report is `results_<preset>.md`, `aer_<preset>.json`, with PNGs in `<preset>/`.
"""

import pathlib
import sys

from experiments import common

SMOKE_MODELS = {"bahdanau": "configs/rnn_bahdanau.py", "transformer": "configs/transformer.py:size=tiny"}
TRANSFORMER = "configs/transformer.py:size=small"
TRANSFORMER_STEPS = 1500
DRAWN = ("bahdanau-50", "general-feed1-seed0", "transformer")  # heatmaps; the others: AER only


def default_workdirs(args) -> list[pathlib.Path]:
  if args.preset == "smoke":
    workdirs = []
    for name, spec in SMOKE_MODELS.items():
      workdir = common.runs_dir(args) / name
      common.train(common.make_tiny(common.load_config(spec), args.data_dir, 3), workdir, progress=False)
      workdirs.append(workdir)
    return workdirs
  from experiments.scores import run as scores
  workdirs = [pathlib.Path("runs/experiments/bottleneck") / args.preset / "bahdanau-50"]
  workdirs += [pathlib.Path("runs/experiments/scores") / args.preset / scores.run_name(score, feed, 0)
               for score in scores.SCORES for feed in (1, 0)]
  missing = [str(w) for w in workdirs if not (w / "train_done.json").exists()]
  if missing:
    raise SystemExit(f"not trained yet: {', '.join(missing)}; run experiments.bottleneck.run and "
                     f"experiments.scores.run with --preset {args.preset} first, or give --workdirs")
  transformer = common.runs_dir(args) / "transformer"
  config = common.load_config(TRANSFORMER)
  if args.data_dir:
    config.data.data_dir = args.data_dir
  steps = TRANSFORMER_STEPS * (2 if args.preset == "full" else 1)
  config.train.update(num_steps=steps, eval_every=steps // 3, eval_samples=0, checkpoint_every=steps)
  common.train(config, transformer)
  return workdirs + [transformer]


def main(argv=None) -> int:
  p = common.parser("alignments", __doc__)
  p.add_argument("--workdirs", nargs="+", type=pathlib.Path, help="trained workdirs (default: see above)")
  args = p.parse_args(argv)
  workdirs = args.workdirs or default_workdirs(args)
  from experiments.alignments import report
  drawn = None if args.workdirs or args.preset == "smoke" else DRAWN
  report.write(workdirs, args.preset, args.report_dir, args.data_dir, drawn)
  return 0


if __name__ == "__main__":
  sys.exit(main())
