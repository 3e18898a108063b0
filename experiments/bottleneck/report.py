r"""Experiment 1's report: test BLEU per source-length bin, Figure 2's claims checked, a plot.

    python -m experiments.bottleneck.report --preset cpu

Reads every `<out>/<preset>/<model>-<30|50|own>/` that holds `experiment_test.json` (with
`train_done.json`, `metrics.jsonl` and `experiment_test.tsv`) and writes `results_<preset>.md`,
`bleu_by_length_<preset>.png` and `curves_<preset>.png` into the report folder, naming the
runs of the preset that have not finished. A length bin of fewer than MIN_BIN test sentences
is shown in parentheses, kept out of the plot and the claims, and named.

The claims are those of Bahdanau et al. 2015, Figure 2, in numbers: the model without
attention translates short sentences well (at least 70 BLEU on 0-9-word sources) and long
ones badly (at least 40 BLEU lower on 50+ words); RNNsearch-50 stays within 10 BLEU of its
short-sentence score in every bin up to 50 words.
"""

import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import sacrebleu  # noqa: E402

from experiments import common  # noqa: E402

SHORT, LONG, HOLD_UNTIL = (0, 9), (50, 10**6), 50  # source words
MIN_SHORT_BLEU, MIN_DROP, MAX_DECLINE = 70.0, 40.0, 10.0
MIN_BIN = 20  # test sentences a length bin (or a claim's span) needs to be read
NO_ATTENTION = ("encdec", "seq2seq", "seq2seq_reversed")
LABELS = {"encdec": "RNNencdec", "bahdanau": "RNNsearch", "seq2seq": "seq2seq",
          "seq2seq_reversed": "seq2seq (reversed)", "luong": "Luong", "transformer": "Transformer"}


def _load(root: pathlib.Path) -> dict:
  found = {}
  for workdir in sorted(root.glob("*-*")):
    if (workdir / "experiment_test.json").exists():
      metrics = workdir / "metrics.jsonl"
      found[workdir.name] = {
          "test": json.loads((workdir / "experiment_test.json").read_text()),
          "train": json.loads((workdir / "train_done.json").read_text()),
          "triples": [line.split("\t") for line in
                      (workdir / "experiment_test.tsv").read_text().splitlines()],
          "metrics": [json.loads(l) for l in metrics.read_text().splitlines()] if metrics.exists() else []}
  return dict(sorted(found.items(), key=lambda kv: (_model(kv[0]) not in NO_ATTENTION, kv[0])))


def _model(name: str) -> str:
  return name.rsplit("-", 1)[0]


def bleu_between(triples, low: int, high: int, min_count: int = 1) -> float | None:
  """Corpus BLEU (sacreBLEU) of the test sentences whose source has low..high words; None
  where fewer than `min_count` have."""
  kept = [(ref, hyp) for src, ref, hyp in triples if low <= len(src.split()) <= high]
  if not kept or len(kept) < min_count:
    return None
  return sacrebleu.metrics.BLEU().corpus_score([h for _, h in kept], [[r for r, _ in kept]]).score


def claims(runs: dict, min_count: int = MIN_BIN) -> list[list]:
  """One row per claim of Figure 2 that the runs can test (each span holding `min_count` test
  sentences or more): what, measured, needed, holds."""
  rows = []
  for name, run in runs.items():
    if _model(name) not in NO_ATTENTION:
      continue
    short, long = (bleu_between(run["triples"], *span, min_count) for span in (SHORT, LONG))
    if short is not None:
      rows.append([name, "BLEU on 0-9-word sources", f"{short:.2f}", f">= {MIN_SHORT_BLEU:.0f}",
                   "yes" if short >= MIN_SHORT_BLEU else "no"])
    if short is not None and long is not None:
      rows.append([name, "drop from 0-9 to 50+ words", f"{short - long:.2f}", f">= {MIN_DROP:.0f}",
                   "yes" if short - long >= MIN_DROP else "no"])
  for name in [n for n in runs if _model(n) == "bahdanau" and not n.endswith("-30")]:
    triples = runs[name]["triples"]
    short = bleu_between(triples, *SHORT, min_count)
    bins = [r for r in runs[name]["test"]["by_length"]
            if r["max_len"] < HOLD_UNTIL and r["sentences"] >= min_count]
    if short is not None and bins:
      worst = min(bins, key=lambda r: r["bleu"])
      decline = short - worst["bleu"]
      rows.append([name, f"largest decline below {HOLD_UNTIL} words (bin {worst['min_len']}-"
                   f"{worst['max_len']})", f"{decline:.2f}", f"<= {MAX_DECLINE:.0f}",
                   "yes" if decline <= MAX_DECLINE else "no"])
  return rows


def write(root, preset: str, report_dir) -> list[pathlib.Path]:
  root, report_dir = pathlib.Path(root), pathlib.Path(report_dir)
  runs = _load(root)
  if not runs:
    raise SystemExit(f"no finished runs under {root}; run `python -m experiments.bottleneck.run "
                     f"--preset {preset}` first")
  report_dir.mkdir(parents=True, exist_ok=True)
  names = list(runs)

  summary = []
  for name in names:
    train, test = runs[name]["train"], runs[name]["test"]
    short, long = (bleu_between(runs[name]["triples"], *span) for span in (SHORT, LONG))
    summary.append([name, train["step"], train.get("val_ppl", float("nan")), test["bleu"],
                    "–" if short is None else short, "–" if long is None else long,
                    test["sentences"], round(train.get("seconds_total", train.get("seconds_last_session", 0)) / 60),
                    round(test.get("decode_seconds", 0) / 60, 1)])
  bins = sorted({(row["min_len"], row["max_len"]) for r in runs.values() for row in r["test"]["by_length"]})
  by_bin = {name: {(row["min_len"], row["max_len"]): row for row in runs[name]["test"]["by_length"]}
            for name in names}
  length_rows, small = [], []
  for b in bins:
    sentences = next(by_bin[n][b]["sentences"] for n in names if b in by_bin[n])
    cell = (lambda x: f"{x:.2f}") if sentences >= MIN_BIN else (lambda x: f"({x:.2f})")
    if sentences < MIN_BIN:
      small.append(f"{b[0]}-{b[1]}")
    length_rows.append([f"{b[0]}-{b[1]}", sentences] +
                       [cell(by_bin[n][b]["bleu"]) if b in by_bin[n] else "–" for n in names])
  width = bins[0][1] - bins[0][0] + 1
  from experiments.bottleneck.run import run_names
  expected = run_names(preset, own=any(n.endswith("-own") for n in names))

  md = report_dir / f"results_{preset}.md"
  png = report_dir / f"bleu_by_length_{preset}.png"
  curves = report_dir / f"curves_{preset}.png"
  test = runs[names[0]]["test"]
  claim_rows = claims(runs)
  md.write_text(
      f"# The bottleneck against attention: BLEU by source length ({preset} preset)\n\n"
      f"Trained on {common.corpus_of(root / names[0]) if names[0].endswith('-own') else 'en_fr_synth'}; "
      f"test set: the test split of `{test['test_data']}`, greedy decoding, "
      f"{test['bleu_signature']}. A model named `-30` was trained on sources of at most 30 "
      f"words, `-50` on at most 50 (Bahdanau et al. 2015, Figure 2), `-own` on the corpus as it "
      f"is. `encdec` is RNNencdec (no attention), `bahdanau` is RNNsearch.\n\n"
      + common.table(["model", "steps", "val ppl", "test BLEU", "BLEU 0-9 words",
                      "BLEU 50+ words", "sentences", "train min", "decode min"], summary)
      + "\n## Figure 2's shape, checked\n\n"
      + (common.table(["model", "claim", "measured", "needed", "holds"], claim_rows)
         if claim_rows else f"No run here can test a claim (each span needs {MIN_BIN} test sentences).\n")
      + f"\n## BLEU per {width}-word source-length bin\n\n"
      + common.table(["source words", "sentences"] + names, length_rows)
      + (f"\nBins of fewer than {MIN_BIN} test sentences, in parentheses and left out of the plot "
         f"and the claims: {', '.join(small)}.\n" if small else "")
      + common.missing(expected, names)
      + f"\n![BLEU by source length]({png.name})\n\n![Validation perplexity]({curves.name})\n")

  fig, ax = plt.subplots(figsize=(7, 4.5))
  colors = dict(zip(LABELS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
  for name in names:
    model, corpus = name.rsplit("-", 1)
    rows = [r for r in runs[name]["test"]["by_length"] if r["sentences"] >= MIN_BIN]
    ax.plot([(r["min_len"] + r["max_len"] + 1) / 2 for r in rows], [r["bleu"] for r in rows],
            marker="o", markersize=3, color=colors.get(model), linestyle="-" if corpus == "50" else "--",
            label=f"{LABELS.get(model, model)}-{corpus}")
  for cap in sorted({int(n.rsplit("-", 1)[1]) for n in names if n.rsplit("-", 1)[1].isdigit()}):
    ax.axvline(cap, color="grey", linestyle=":", linewidth=1)
    ax.text(cap, 1, f" cap {cap}", color="grey", fontsize=8, va="bottom")
  ax.set_xlabel("source sentence length (words)")
  ax.set_ylabel("BLEU")
  ax.set_ylim(0, 100)
  ax.set_title(f"BLEU by source length ({preset} preset)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  common.save_figure(fig, png)

  fig, ax = plt.subplots(figsize=(7, 4))
  for name in names:
    points = [(m["step"], m["val_ppl"]) for m in runs[name]["metrics"] if "val_ppl" in m]
    if points:
      model, corpus = name.rsplit("-", 1)
      ax.plot(*zip(*points), marker="o", markersize=3, color=colors.get(model),
              linestyle="-" if corpus == "50" else "--", label=f"{LABELS.get(model, model)}-{corpus}")
  common.save_curves(fig, ax, curves)
  print(f"wrote {md}, {png} and {curves}")
  return [md, png, curves]


def main(argv=None) -> int:
  return common.report_main("bottleneck", __doc__, write, argv)


if __name__ == "__main__":
  sys.exit(main())
