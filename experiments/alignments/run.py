r"""Experiment 2: alignments of sentences with reordering (Bahdanau et al. 2015, Figure 3).

    python -m experiments.alignments.run --preset cpu                       # experiment 1's models
    python -m experiments.alignments.run --preset cpu --workdirs runs/demo  # any trained workdirs

Translates a fixed list of sentences with each workdir's model and draws the attention
weights as heatmaps, source pieces along x and target pieces along y: for an attentive RNN
its one map, for the Transformer the cross-attention's mean over layers and heads and then
every layer and head. The English sentences are built from plans of the en_fr_synth grammar
(so the corpus contains their like and the French reference is the grammar's own), one per
phenomenon: post-nominal adjectives, ne ... pas with the passé composé, an object pronoun
before the verb, the passive, two clauses. A workdir trained on `numbers` gets numbers instead.

Workdirs, unless given with --workdirs:
  smoke     a tiny RNNsearch and a tiny Transformer, trained here on numbers:fr for 3 steps.
  cpu/full  experiment 1's attentive models trained on long50 (cpu: bahdanau; full: also
            luong and transformer): runs/experiments/bottleneck/<preset>/<model>-50.
Expected wall time for the cpu preset, an estimate: under a minute (a few sentences per model),
once experiment 1 has run. The report is `results_<preset>.md` with PNGs in `<preset>/`.
"""

import pathlib
import sys

from experiments import common
from experiments.bottleneck import run as bottleneck

ATTENTIVE = ("bahdanau", "luong", "transformer")
SMOKE_MODELS = {"bahdanau": "configs/rnn_bahdanau.py", "transformer": "configs/transformer.py:size=tiny"}


def default_workdirs(args) -> list[pathlib.Path]:
  if args.preset == "smoke":
    workdirs = []
    for name, spec in SMOKE_MODELS.items():
      workdir = common.runs_dir(args) / name
      common.train(common.make_tiny(common.load_config(spec), args.data_dir, 3), workdir, progress=False)
      workdirs.append(workdir)
    return workdirs
  root = pathlib.Path("runs/experiments/bottleneck") / args.preset
  workdirs = [root / f"{model}-50" for model, corpus in bottleneck.RUNS[args.preset]
              if corpus == "50" and model in ATTENTIVE]
  missing = [str(w) for w in workdirs if not (w / "train_done.json").exists()]
  if missing:
    raise SystemExit(f"experiment 1 has not trained {', '.join(missing)}; run `python -m "
                     f"experiments.bottleneck.run --preset {args.preset}` first, or give --workdirs")
  return workdirs


def main(argv=None) -> int:
  p = common.parser("alignments", __doc__)
  p.add_argument("--workdirs", nargs="+", type=pathlib.Path, help="trained workdirs (default: see above)")
  args = p.parse_args(argv)
  workdirs = args.workdirs or default_workdirs(args)
  from experiments.alignments import report
  report.write(workdirs, args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
