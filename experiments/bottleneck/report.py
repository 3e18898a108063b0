r"""Experiment 1's report: test BLEU per source-length bin, a table and a plot.

    python -m experiments.bottleneck.report --preset cpu

Reads `<out>/<preset>/<model>-<30|50>/{train_done,experiment_test}.json` and writes
`results_<preset>.md` and `bleu_by_length_<preset>.png` into the report folder.
"""

import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments import common  # noqa: E402
from experiments.bottleneck.run import BUCKET_WIDTH, CORPORA, MODELS  # noqa: E402


def _load(root: pathlib.Path) -> dict:
  found = {}
  for corpus in CORPORA:
    for model in MODELS:
      workdir = root / f"{model}-{corpus}"
      if (workdir / "experiment_test.json").exists():
        found[f"{model}-{corpus}"] = {
            "test": json.loads((workdir / "experiment_test.json").read_text()),
            "train": json.loads((workdir / "train_done.json").read_text())}
  return found


def write(root, preset: str, report_dir) -> list[pathlib.Path]:
  root, report_dir = pathlib.Path(root), pathlib.Path(report_dir)
  runs = _load(root)
  if not runs:
    raise SystemExit(f"no finished runs under {root}; run `python -m experiments.bottleneck.run "
                     f"--preset {preset}` first")
  report_dir.mkdir(parents=True, exist_ok=True)
  names = list(runs)

  summary = [[name, runs[name]["train"]["step"], runs[name]["train"].get("val_ppl", float("nan")),
              runs[name]["test"]["bleu"], runs[name]["test"]["sentences"]] for name in names]
  bins = sorted({(row["min_len"], row["max_len"]) for r in runs.values() for row in r["test"]["by_length"]})
  by_bin = {name: {(row["min_len"], row["max_len"]): row for row in runs[name]["test"]["by_length"]}
            for name in names}
  length_rows = []
  for b in bins:
    sentences = next(by_bin[n][b]["sentences"] for n in names if b in by_bin[n])
    length_rows.append([f"{b[0]}-{b[1]}", sentences] +
                       [by_bin[n][b]["bleu"] if b in by_bin[n] else "–" for n in names])

  md = report_dir / f"results_{preset}.md"
  png = report_dir / f"bleu_by_length_{preset}.png"
  test = runs[names[0]]["test"]
  md.write_text(
      f"# The bottleneck against attention: BLEU by source length ({preset} preset)\n\n"
      f"Test set: the test split of `{test['test_data']}`, greedy decoding, "
      f"{test['bleu_signature']}. A model named `-30` was trained on sources of at most 30 "
      f"words, `-50` on at most 50 (Bahdanau et al. 2015, Figure 2).\n\n"
      + common.table(["model", "steps", "val ppl", "test BLEU", "sentences"], summary)
      + f"\n## BLEU per {BUCKET_WIDTH}-word source-length bin\n\n"
      + common.table(["source words", "sentences"] + names, length_rows)
      + f"\n![BLEU by source length]({png.name})\n")

  fig, ax = plt.subplots(figsize=(7, 4.5))
  colors = dict(zip(MODELS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
  for name in names:
    model, corpus = name.rsplit("-", 1)
    rows = runs[name]["test"]["by_length"]
    ax.plot([(r["min_len"] + r["max_len"] + 1) / 2 for r in rows], [r["bleu"] for r in rows],
            marker="o", markersize=3, color=colors[model], linestyle="-" if corpus == "30" else "--",
            label=name)
  ax.set_xlabel("source sentence length (words)")
  ax.set_ylabel("BLEU")
  ax.set_title(f"BLEU by source length ({preset} preset)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, ncol=2)
  common.save_figure(fig, png)
  print(f"wrote {md} and {png}")
  return [md, png]


def main(argv=None) -> int:
  return common.report_main("bottleneck", __doc__, write, argv)


if __name__ == "__main__":
  sys.exit(main())
