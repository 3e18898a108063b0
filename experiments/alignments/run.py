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

On another corpus (`--config.data.name=files --config.data.files_dir=DIR`, any data field): the
runs of experiments 1 and 3 made with the same flags (RNNsearch `bahdanau-own`), a Transformer
trained here on it, heatmaps of its first test pairs, and AER against `--gold FILE` (a Pharaoh
line per test pair) or the corpus's own gold; without either, AER is skipped and the report
says so. The one run this experiment trains (`--list`) is the Transformer.
"""

import pathlib
import sys

from experiments import common, shared

DRAWN = ("bahdanau-50", "general-feed1-seed0", "transformer")  # heatmaps; the others: AER only


def own_runs(args) -> dict:
  """{name: config} of the models this experiment trains itself (`--list`)."""
  if args.preset == "smoke":
    return {name: shared.smoke_config(name, args) for name in shared.SMOKE_MODELS}
  return {"transformer": shared.transformer_config(args)}


def other_workdirs(args) -> list[pathlib.Path]:
  """The models of experiments 1 and 3 that this one reads (none for smoke)."""
  if args.preset == "smoke":
    return []
  rnnsearch = "bahdanau-own" if "name" in args.data else "bahdanau-50"
  workdirs = [pathlib.Path(args.out).parent / "bottleneck" / args.preset / rnnsearch]
  workdirs += [shared.luong_workdir(pathlib.Path(args.out), args.preset, score, "", feed, 0)
               for score in shared.SCORES for feed in (1, 0)]
  missing = [str(w) for w in workdirs if not (w / "train_done.json").exists()]
  if missing:
    raise SystemExit(f"not trained yet: {', '.join(missing)}; run experiments.bottleneck.run and "
                     f"experiments.scores.run with --preset {args.preset} (and the same data flags) "
                     "first, or give --workdirs")
  return workdirs


def main(argv=None) -> int:
  p = common.parser("alignments", __doc__)
  p.add_argument("--workdirs", nargs="+", type=pathlib.Path, help="trained workdirs (default: see above)")
  p.add_argument("--gold", help="gold alignments of the corpus's test split, a Pharaoh line per pair")
  args = common.parse(p, argv)
  own = {} if args.workdirs else own_runs(args)
  chosen = common.select(list(own), args)
  if args.list:
    print("\n".join(chosen))
    return 0
  if args.only or args.shard:  # cluster jobs train; the report comes after them all
    for name in chosen:
      common.train(own[name], common.runs_dir(args) / name, progress=args.preset != "smoke")
    return 0
  workdirs = args.workdirs or other_workdirs(args)
  for name, config in own.items():
    common.train(config, common.runs_dir(args) / name, progress=args.preset != "smoke")
    workdirs.append(common.runs_dir(args) / name)
  from experiments.alignments import report
  drawn = None if args.workdirs or args.preset == "smoke" else [
      "bahdanau-own" if n == "bahdanau-50" and "name" in args.data else n for n in DRAWN]
  report.write(workdirs, args.preset, args.report_dir, args.data_dir, drawn, gold_file=args.gold)
  return 0


if __name__ == "__main__":
  sys.exit(main())
