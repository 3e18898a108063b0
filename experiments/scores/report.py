r"""Experiment 3's report: validation perplexity and test BLEU per score and input feeding.

    python -m experiments.scores.report --preset cpu

Reads `<out>/<preset>/<score>-feed<f>-seed<s>/{train_done,experiment_test}.json` and writes
`results_<preset>.md` and `scores_<preset>.png` into the report folder.
"""

import json
import pathlib
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments import common  # noqa: E402
from experiments.scores.run import GRID, run_name  # noqa: E402


def write(root, preset: str, report_dir) -> list[pathlib.Path]:
  root, report_dir = pathlib.Path(root), pathlib.Path(report_dir)
  groups: dict[tuple[str, int], list[dict]] = {}
  for score, feed, seed in GRID[preset]:
    workdir = root / run_name(score, feed, seed)
    if (workdir / "experiment_test.json").exists():
      train = json.loads((workdir / "train_done.json").read_text())
      test = json.loads((workdir / "experiment_test.json").read_text())
      groups.setdefault((score, feed), []).append(
          {"seed": seed, "val_ppl": train.get("val_ppl"), "bleu": test["bleu"], "step": train["step"]})
  if not groups:
    raise SystemExit(f"no finished runs under {root}; run `python -m experiments.scores.run "
                     f"--preset {preset}` first")
  report_dir.mkdir(parents=True, exist_ok=True)
  rows = [[score, "yes" if feed else "no", len(runs), runs[0]["step"],
           common.mean_std([r["val_ppl"] for r in runs]), common.mean_std([r["bleu"] for r in runs])]
          for (score, feed), runs in groups.items()]
  seed_rows = [[score, "yes" if feed else "no", r["seed"], r["val_ppl"], r["bleu"]]
               for (score, feed), runs in groups.items() for r in runs]
  md, png = report_dir / f"results_{preset}.md", report_dir / f"scores_{preset}.png"
  md.write_text(
      f"# Luong attention scores and input feeding ({preset} preset)\n\n"
      "Validation perplexity at the last step and greedy test BLEU (sacreBLEU), mean ± standard "
      "deviation over seeds (Luong et al. 2015, Table 4).\n\n"
      + common.table(["score", "input feeding", "seeds", "steps", "val ppl", "test BLEU"], rows)
      + "\n## Every run\n\n"
      + common.table(["score", "input feeding", "seed", "val ppl", "test BLEU"], seed_rows)
      + f"\n![BLEU by score]({png.name})\n")

  scores = list(dict.fromkeys(score for score, _ in groups))
  fig, ax = plt.subplots(figsize=(7, 4))
  for offset, feed in ((-0.2, 1), (0.2, 0)):
    xs, means, stds = [], [], []
    for i, score in enumerate(scores):
      bleus = [r["bleu"] for r in groups.get((score, feed), [])]
      if bleus:
        xs.append(i + offset)
        means.append(statistics.mean(bleus))
        stds.append(statistics.stdev(bleus) if len(bleus) > 1 else 0.0)
    ax.bar(xs, means, width=0.4, yerr=stds, capsize=3,
           label="input feeding" if feed else "no input feeding")
  ax.set_xticks(range(len(scores)), scores)
  ax.set_ylabel("test BLEU")
  ax.set_title(f"Luong attention scores ({preset} preset; mean ± std over seeds)")
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3, axis="y")
  common.save_figure(fig, png)
  print(f"wrote {md} and {png}")
  return [md, png]


def main(argv=None) -> int:
  return common.report_main("scores", __doc__, write, argv)


if __name__ == "__main__":
  sys.exit(main())
