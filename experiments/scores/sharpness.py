r"""How sharp each variant's attention is: the mean, over the target pieces of test sentences,
of the largest attention weight on a source piece (1 = all on one piece, 1/S = spread evenly).

    python -m experiments.scores.sharpness --preset cpu

Reads the finished runs of `experiments.scores.run` (greedy translations of the first
SENTENCES test sources of each run's `experiment_test.tsv`) and writes
`sharpness_<preset>.md` into the report folder. A score whose weights stay diffuse has not yet
learned to align, whatever its perplexity says.
"""

import pathlib
import sys

import numpy as np

from experiments import common
from experiments.scores import report

SENTENCES = 64


def largest_weight(workdir) -> float:
  import attnjax
  lines = (workdir / "experiment_test.tsv").read_text().splitlines()
  sources = [line.split("\t")[0] for line in lines[:SENTENCES]]
  translations = attnjax.load(workdir).alignments(sources, beam=1, batch_size=SENTENCES)
  return float(np.mean([np.max(t.alignment[:, 0, 0, :], axis=-1).mean() for t in translations]))


def main(argv=None) -> int:
  args = common.parser("scores", __doc__, runs=False).parse_args(argv)
  root = common.runs_dir(args)
  peaks: dict[tuple[str, int], list[float]] = {}
  for workdir in sorted(root.iterdir()) if root.is_dir() else []:
    match = report.RUN.fullmatch(workdir.name)
    if match and (workdir / "experiment_test.tsv").exists():
      key = (match["score"], int(match["feed"]))
      peaks.setdefault(key, []).append(largest_weight(workdir))
  if not peaks:
    raise SystemExit(f"no finished runs under {root}")
  rows = [[score, "yes" if feed else "no", len(values), common.mean_std(values)]
          for (score, feed), values in sorted(peaks.items())]
  path = pathlib.Path(args.report_dir) / f"sharpness_{args.preset}.md"
  path.write_text(f"# Attention sharpness ({args.preset} preset)\n\n"
                  f"The largest attention weight per target piece, mean over {SENTENCES} test "
                  "sentences' greedy translations, then mean ± std over seeds.\n\n"
                  + common.table(["score", "input feeding", "seeds", "largest weight"], rows))
  print(f"wrote {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
