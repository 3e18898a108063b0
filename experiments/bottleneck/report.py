r"""Experiment 1's report: test BLEU per source-length bin with its interval, Figure 2's shape
checked relative to each model's own scores, a plot.

    python -m experiments.bottleneck.report --preset cpu

Reads the runs kept in `<report_dir>/runs_<preset>/` (each run's `experiment_test.json`,
`experiment_test.tsv`, `train_done.json`, `metrics.jsonl` and `provenance.json`, whose grid
cell says whether the model attends; `grid.json`: the preset's runs) and writes
`results_<preset>.md`, `bleu_by_length_<preset>.png` and `curves_<preset>.png` into the report
folder, naming the runs of the preset that have not finished. A length bin of fewer than
MIN_BIN test sentences is shown in parentheses and kept out of the plot and the claims.

Bahdanau et al. 2015, Figure 2, as claims that mean something on any corpus: each is stated
against the model's own scores, over the test set's shortest and longest fifths of sources, with
95% bootstrap intervals over the test sentences (they measure the test set, not the training):
  the bottleneck      a model without attention scores on the longest fifth at most half what it
                      scores on the shortest (the long span's interval, top included, below half
                      the short span's BLEU);
  attention rescues   an attentive model trained on the same corpus, of the same family, leads
                      it on the longest fifth (a paired interval of the difference above 0);
  attention holds     an attentive model stays within 10% of its shortest-fifth score in every bin
                      up to the longest source it was trained on.
"""

import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from attnjax.analysis import evaluate  # noqa: E402
from experiments import common  # noqa: E402

FIFTH = 0.2          # the shortest and longest fifth of the test sources, by words
MAX_LONG_SHARE = 0.5  # the bottleneck: the longest fifth's BLEU at most half the shortest's
MAX_DECLINE = 0.10    # attention holds: no bin within the training lengths more than 10% lower
MIN_BIN = 20          # test sentences a length bin needs to be read


def results_dir(report_dir, preset: str) -> pathlib.Path:
  """Where the run script keeps each finished run's result files, and the report reads them."""
  return pathlib.Path(report_dir) / f"runs_{preset}"


def _load(root: pathlib.Path) -> dict:
  found = {}
  for kept in sorted(root.iterdir()) if root.is_dir() else []:
    if not (kept / "experiment_test.json").exists():
      continue
    metrics = kept / "metrics.jsonl"
    found[kept.name] = {
        "kept": kept,
        "cell": json.loads((kept / "provenance.json").read_text())["cell"],
        "test": json.loads((kept / "experiment_test.json").read_text()),
        "train": json.loads((kept / "train_done.json").read_text()),
        "triples": [line.split("\t") for line in (kept / "experiment_test.tsv").read_text().splitlines()],
        "metrics": [json.loads(l) for l in metrics.read_text().splitlines()] if metrics.exists() else []}
  return dict(sorted(found.items(), key=lambda kv: (kv[1]["cell"]["attends"], kv[0])))


def fifths(triples) -> tuple[tuple[int, int], tuple[int, int]]:
  """(low, high) source words of the test set's shortest and longest fifth of sentences."""
  lengths = sorted(len(src.split()) for src, _, _ in triples)
  cut = max(1, int(len(lengths) * FIFTH))
  return (lengths[0], lengths[cut - 1]), (lengths[-cut], lengths[-1])


def _between(triples, low: int, high: int):
  return [(ref, hyp) for src, ref, hyp in triples if low <= len(src.split()) <= high]


def bleu_between(triples, low: int, high: int, min_count: int = 1):
  """(BLEU, low, high) of the test sentences whose source has low..high words, with a 95%
  bootstrap interval over them; None where fewer than `min_count` have."""
  kept = _between(triples, low, high)
  if not kept or len(kept) < min_count:
    return None
  return evaluate.bleu_interval([h for _, h in kept], [r for r, _ in kept])


def _interval(x) -> str:
  return "–" if x is None else f"{x[0]:.2f} ({x[1]:.2f}-{x[2]:.2f})"


def claims(runs: dict, min_count: int = MIN_BIN) -> list[list]:
  """One row per claim the runs can test (each span holding `min_count` test sentences or
  more): model, claim, measured, needed, holds."""
  rows = []
  for name, run in runs.items():
    short_span, long_span = fifths(run["triples"])
    short, long = (bleu_between(run["triples"], *span, min_count) for span in (short_span, long_span))
    if short is None or long is None:
      continue
    words = f"sources of {short_span[0]}-{short_span[1]} and {long_span[0]}-{long_span[1]} words"
    if not run["cell"]["attends"]:
      rows.append([name, f"the bottleneck: BLEU on the longest fifth at most {MAX_LONG_SHARE:g} of "
                   f"the shortest's ({words})", f"{_interval(long)} against {_interval(short)}",
                   f"top of the interval <= {MAX_LONG_SHARE * short[0]:.2f}",
                   "yes" if long[2] <= MAX_LONG_SHARE * short[0] else "no"])
      for other, rival in runs.items():
        if rival["cell"]["attends"] and _same_setting(run, rival):
          pairs = [(src, ref) for src, ref, _ in run["triples"]]
          if pairs != [(src, ref) for src, ref, _ in rival["triples"]]:
            continue  # not scored on the same test set: no paired interval
          kept = [i for i, (src, _, _) in enumerate(run["triples"])
                  if long_span[0] <= len(src.split()) <= long_span[1]]
          lead = evaluate.bleu_difference_interval([rival["triples"][i][2] for i in kept],
                                                   [run["triples"][i][2] for i in kept],
                                                   [run["triples"][i][1] for i in kept])
          rows.append([f"{other} / {name}", f"attention rescues: the attentive model leads on the "
                       f"longest fifth ({long_span[0]}-{long_span[1]} words), paired interval",
                       _interval(lead), "bottom of the interval > 0", "yes" if lead[1] > 0 else "no"])
    else:
      cap = run["cell"].get("max_train_words")
      bins = [r for r in run["test"]["by_length"] if r["sentences"] >= min_count
              and (cap is None or r["max_len"] <= cap) and r["min_len"] > short_span[1]]
      if bins:
        worst = min(bins, key=lambda r: r["bleu"])
        decline = (short[0] - worst["bleu"]) / short[0] if short[0] else 0.0
        rows.append([name, f"attention holds: every bin up to {cap or 'the longest'} words within "
                     f"{MAX_DECLINE:.0%} of the shortest fifth's BLEU (worst: {worst['min_len']}-"
                     f"{worst['max_len']} words)", f"{worst['bleu']:.2f} against {short[0]:.2f}, "
                     f"{decline:.1%} lower", f"<= {MAX_DECLINE:.0%}", "yes" if decline <= MAX_DECLINE else "no"])
  return rows


def _same_setting(a: dict, b: dict) -> bool:
  """Two runs comparable for 'attention rescues': the same family and training corpus."""
  return (a["cell"]["family"], a["cell"]["corpus"]) == (b["cell"]["family"], b["cell"]["corpus"])


def write(root, preset: str, report_dir) -> list[pathlib.Path]:
  root, report_dir = pathlib.Path(root), pathlib.Path(report_dir)
  runs = _load(root)
  if not runs:
    raise SystemExit(f"no finished runs under {root}; run `python -m experiments.bottleneck.run "
                     f"--preset {preset}` first")
  report_dir.mkdir(parents=True, exist_ok=True)
  names = list(runs)
  short_span, long_span = fifths(runs[names[0]]["triples"])

  summary = []
  for name in names:
    train, test = runs[name]["train"], runs[name]["test"]
    short, long = (bleu_between(runs[name]["triples"], *span) for span in (short_span, long_span))
    summary.append([name, runs[name]["cell"]["label"], train["step"], train.get("val_ppl", float("nan")),
                    test["bleu"], _interval(short), _interval(long), test["sentences"],
                    round(train.get("seconds_total", train.get("seconds_last_session", 0)) / 60),
                    round(test.get("decode_seconds", 0) / 60, 1)])
  bins = sorted({(row["min_len"], row["max_len"]) for r in runs.values() for row in r["test"]["by_length"]})
  per_bin = {}
  length_rows, small = [], []
  for low, high in bins:
    sentences = len(_between(runs[names[0]]["triples"], low, high))
    row = [f"{low}-{high}", sentences]
    for name in names:
      score = bleu_between(runs[name]["triples"], low, high)
      per_bin[name, low, high] = score
      row.append("–" if score is None else _interval(score) if sentences >= MIN_BIN else f"({score[0]:.2f})")
    if sentences < MIN_BIN:
      small.append(f"{low}-{high}")
    length_rows.append(row)
  width = bins[0][1] - bins[0][0] + 1
  grid = root / "grid.json"
  expected = json.loads(grid.read_text())["runs"] if grid.exists() else names

  md = report_dir / f"results_{preset}.md"
  png = report_dir / f"bleu_by_length_{preset}.png"
  curves = report_dir / f"curves_{preset}.png"
  test = runs[names[0]]["test"]
  claim_rows = claims(runs)
  md.write_text(
      f"# The bottleneck against attention: BLEU by source length ({preset} preset)\n\n"
      f"Machine: {common.machines(r['kept'] for r in runs.values())}. Test set: the test split of "
      f"`{test['test_data']}`, greedy decoding, {test['bleu_signature']}. A model named `-30` was "
      f"trained on sources of at most 30 words, `-50` on at most 50 (Bahdanau et al. 2015, Figure "
      f"2), `-own` on the corpus as it is. BLEU is given with its 95% bootstrap interval over the "
      f"test sentences of the span (1,000 resamples): it measures the test set, not the training. "
      f"The shortest and longest fifths of this test set's sources have {short_span[0]}-"
      f"{short_span[1]} and {long_span[0]}-{long_span[1]} words.\n\n"
      + common.table(["model", "what", "steps", "val ppl", "test BLEU", "BLEU, shortest fifth",
                      "BLEU, longest fifth", "sentences", "train min", "decode min"], summary)
      + "\n## Figure 2's shape, checked against each model's own scores\n\n"
      + (common.table(["model", "claim", "measured", "needed", "holds"], claim_rows)
         if claim_rows else f"No run here can test a claim (each span needs {MIN_BIN} test sentences).\n")
      + f"\n## BLEU per {width}-word source-length bin (95% interval)\n\n"
      + common.table(["source words", "sentences"] + names, length_rows)
      + (f"\nBins of fewer than {MIN_BIN} test sentences, in parentheses and left out of the plot "
         f"and the claims: {', '.join(small)}.\n" if small else "")
      + common.missing(expected, names)
      + f"\n![BLEU by source length]({png.name})\n\n![Validation perplexity]({curves.name})\n")

  fig, ax = plt.subplots(figsize=(7, 4.5))
  for name in names:
    points = [((low + high + 1) / 2, per_bin[name, low, high]) for low, high in bins
              if per_bin[name, low, high] is not None and len(_between(runs[name]["triples"], low, high)) >= MIN_BIN]
    if not points:
      continue
    xs = [x for x, _ in points]
    line, = ax.plot(xs, [s[0] for _, s in points], marker="o", markersize=3,
                    linestyle="--" if not runs[name]["cell"]["attends"] else "-", label=name)
    ax.fill_between(xs, [s[1] for _, s in points], [s[2] for _, s in points], color=line.get_color(), alpha=0.15)
  for cap in sorted({r["cell"]["max_train_words"] for r in runs.values() if r["cell"].get("max_train_words")}):
    ax.axvline(cap, color="grey", linestyle=":", linewidth=1)
    ax.text(cap, 1, f" cap {cap}", color="grey", fontsize=8, va="bottom")
  ax.set_xlabel("source sentence length (words)")
  ax.set_ylabel("BLEU (95% interval over the bin's sentences)")
  ax.set_ylim(0, 100)
  ax.set_title(f"BLEU by source length ({preset} preset; dashed: no attention)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  common.save_figure(fig, png)

  fig, ax = plt.subplots(figsize=(7, 4))
  for name in names:
    points = [(m["step"], m["val_ppl"]) for m in runs[name]["metrics"] if "val_ppl" in m]
    if points:
      ax.plot(*zip(*points), marker="o", markersize=3,
              linestyle="--" if not runs[name]["cell"]["attends"] else "-", label=name)
  common.save_curves(fig, ax, curves)
  print(f"wrote {md}, {png} and {curves}")
  return [md, png, curves]


def main(argv=None) -> int:
  args = common.parser("bottleneck", __doc__, runs=False, script="report").parse_args(argv)
  write(results_dir(args.report_dir, args.preset), args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
