r"""Experiment 3's report: perplexity, test BLEU, AER and sharpness per score, global or local
attention and input feeding, with significance and Luong's two claims on local attention.

    python -m experiments.scores.report --preset cpu

Reads every run folder `<score>[-local<m|p>]-feed<f>-seed<s>/` under `<report_dir>/runs_<preset>/`
(the result files the run script keeps there, with `grid.json`, the preset's runs) that holds
`experiment_test.json` (with
`train_done.json`, `metrics.jsonl`, `experiment_test.tsv` and, where measured,
`experiment_attention.json`) and writes `results_<preset>.md`, `scores_<preset>.png` and
`curves_<preset>.png` into the report folder.

Significance: the variant with the best mean test BLEU is the baseline; each other variant is
compared with it over training seeds (Welch's t on the per-seed BLEU, Holm's correction over the
table: `attnjax.analysis.stats`). sacreBLEU's paired bootstrap over the pooled test sentences of
the seeds both have is kept beside it as a column, named for what it measures.
"""

import json
import pathlib
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from attnjax import evaluators  # noqa: E402
from attnjax.analysis import evaluate, stats  # noqa: E402
from experiments import common  # noqa: E402

LUONG = ("dot", "general", "concat", "scaled_dot", "additive")  # the Luong RNN's scores
WITHIN = 2.0  # BLEU: another model "matches" Luong's RNN when at most this far below it
RUN = re.compile(r"(?P<score>\w+?)(?:-local(?P<local>[mp]))?-feed(?P<feed>[01])-seed(?P<seed>\d+)")
FLAT = 10.0  # per cent: a validation perplexity falling less over the last evaluation has all but flattened


def last_fall(curve) -> float | None:
  """How much the validation perplexity fell over the last evaluation interval, in per cent."""
  if len(curve) < 2:
    return None
  (_, before), (_, after) = curve[-2:]
  return 100.0 * (before - after) / before


def results_dir(report_dir, preset: str) -> pathlib.Path:
  """Where the run script keeps each finished run's result files, and the report reads them."""
  return pathlib.Path(report_dir) / f"runs_{preset}"


def _load(root: pathlib.Path) -> dict[tuple[str, str, int], list[dict]]:
  """(score, local, feed) -> its finished runs, by seed."""
  groups: dict[tuple[str, int], list[dict]] = {}
  for workdir in sorted(root.iterdir()) if root.is_dir() else []:
    match = RUN.fullmatch(workdir.name)
    if not match or not (workdir / "experiment_test.json").exists():
      continue
    train = json.loads((workdir / "train_done.json").read_text())
    test = json.loads((workdir / "experiment_test.json").read_text())
    lines = (workdir / "experiment_test.tsv").read_text().splitlines()
    metrics = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    attention = workdir / "experiment_attention.json"
    attention = json.loads(attention.read_text()) if attention.exists() else {}
    groups.setdefault((match["score"], match["local"] or "", int(match["feed"])), []).append({
        "seed": int(match["seed"]), "name": workdir.name, "workdir": workdir, "step": train["step"], "val_ppl": train.get("val_ppl"),
        "test_ppl": test.get("ppl"), "bleu": test["bleu"],
        "references": [l.split("\t")[1] for l in lines], "hypotheses": [l.split("\t")[2] for l in lines],
        "curve": [(m["step"], m["val_ppl"]) for m in metrics if "val_ppl" in m],
        "aer": attention.get("aer"), "largest_weight": attention.get("largest_weight")})
  for runs in groups.values():
    runs.sort(key=lambda r: r["seed"])
  return groups


def _attention(local: str) -> str:
  return f"local-{local}" if local else "global"


def _name(score: str, local: str, feed: int) -> str:
  return f"{score}, {_attention(local) + ', ' if local else ''}{'feeding' if feed else 'no feeding'}"


def _values(runs, field) -> list[float]:
  return [r[field] for r in runs if r[field] is not None]


def luong_claims(groups: dict) -> str:
  """Luong et al. 2015's two findings on local attention, each tested over seeds: local-p with
  the general score is the best variant (Table 4), and local attention aligns better than global
  (Table 6, AER), each against global `general` with the same input feeding. A claim holds or
  fails only where Welch's t over seeds, Holm-corrected over the claims, passes."""
  claims = []  # (text before the verdict, the direction the claim needs, best values, other values)
  local_p = [key for key in groups if key[:2] == ("general", "p")]
  if local_p:
    best = max(groups, key=lambda key: statistics.mean(r["bleu"] for r in groups[key]))
    rival = max((key for key in groups if key[:2] != ("general", "p")),
                key=lambda key: statistics.mean(r["bleu"] for r in groups[key]), default=None)
    top = max(local_p, key=lambda key: statistics.mean(r["bleu"] for r in groups[key]))
    if rival is not None:
      claims.append((f"Local-p with the general score is the best variant (Table 4): its best, "
                     f"{_name(*top)}, {common.mean_std([r['bleu'] for r in groups[top]])} BLEU, against "
                     f"the best other variant, {_name(*rival)}, "
                     f"{common.mean_std([r['bleu'] for r in groups[rival]])}"
                     + ("" if best == top else f" (the best overall is {_name(*best)})"),
                     "higher", [r["bleu"] for r in groups[top]], [r["bleu"] for r in groups[rival]]))
  for feed in (1, 0):
    base = groups.get(("general", "", feed))
    if not base or not _values(base, "aer"):
      continue
    for local in "mp":
      runs = groups.get(("general", local, feed))
      if runs and _values(runs, "aer"):
        claims.append((f"Local-{local} aligns better than global ({'feeding' if feed else 'no feeding'}, "
                       f"Table 6): AER {common.mean_std(_values(runs, 'aer'), 3)} against "
                       f"{common.mean_std(_values(base, 'aer'), 3)}",
                       "lower", _values(runs, "aer"), _values(base, "aer")))
  if not claims:
    return ""
  adjusted = stats.holm([stats.welch(mine, theirs) for _, _, mine, theirs in claims])
  lines = []
  for (text, direction, mine, theirs), p in zip(claims, adjusted):
    seeds = min(len(mine), len(theirs))
    better = statistics.mean(mine) > statistics.mean(theirs) if direction == "higher" else (
        statistics.mean(mine) < statistics.mean(theirs))
    if p is not None and p < stats.ALPHA:
      outcome = "holds" if better else "does not hold"
      lines.append(f"- {text}: {outcome} (Holm p = {p:.4f} over {seeds} seeds).")
    else:
      lines.append(f"- {text}: not decided, {stats.verdict(p, seeds)}"
                   + (f" (Holm p = {p:.4f})." if p is not None else "."))
  return ("\n## Luong et al. 2015 on local attention\n\nLuong's RWTH German-English AER: global "
          "0.39, local-m 0.34, local-p 0.36 (Table 6); best single model local-p general, 19.0 "
          "BLEU against 18.6 for global dot (Table 4). Here, mean ± standard deviation over seeds; "
          "a claim holds or fails only where Welch's t over the seeds, with Holm's correction over "
          f"these claims, gives p < {stats.ALPHA}:\n\n" + "\n".join(lines) + "\n")


def others_against_luong(groups: dict) -> str:
  """Each other model (a run named `<model>_<score>`, e.g. the minGRU with Luong's general score)
  against Luong's LSTM RNN with the same score and global attention, with and without input
  feeding: Welch's t over seeds, Holm's correction over these comparisons only (its own family,
  so the Luong variants' table keeps its own), and whether it is at most WITHIN BLEU below."""
  pairs = []
  for key in groups:
    if key[0] in LUONG:
      continue
    score = next((sc for sc in LUONG if key[0].endswith("_" + sc)), None)
    for feed in (0, 1):
      if score and (score, "", feed) in groups:
        pairs.append((key, (score, "", feed)))
  if not pairs:
    return ""
  bleus = lambda key: [r["bleu"] for r in groups[key]]
  adjusted = stats.holm([stats.welch(bleus(a), bleus(b)) for a, b in pairs])
  rows = []
  for (a, b), p_holm in zip(pairs, adjusted):
    difference = statistics.mean(bleus(a)) - statistics.mean(bleus(b))
    seeds = min(len(groups[a]), len(groups[b]))
    rows.append([_name(*a), common.mean_std(bleus(a)), f"{b[0]}, LSTM, {'feeding' if b[2] else 'no feeding'}",
                 common.mean_std(bleus(b)), f"{len(groups[a])} / {len(groups[b])}", f"{difference:+.2f}",
                 stats.format_p(stats.welch(bleus(a), bleus(b))), stats.format_p(p_holm), stats.verdict(p_holm, seeds),
                 "yes" if difference >= -WITHIN else "no"])
  return ("\n## Other models against Luong's RNN\n\n"
          "Each against the LSTM with Luong attention of the same score (global), with and without "
          "input feeding, at the same steps: Welch's t over the per-seed test BLEU, Holm's "
          f"correction over these comparisons; 'within {WITHIN:g}' says whether its mean is at most "
          f"{WITHIN:g} BLEU below.\n\n"
          + common.table(["model", "BLEU", "against", "BLEU", "seeds", "difference", "Welch p",
                          "Holm p", "verdict", f"within {WITHIN:g}"], rows))


def significance(groups: dict) -> tuple[str, list[list]]:
  """Every variant against the best (by mean BLEU): Welch's t over the per-seed BLEU with Holm's
  correction over the table (the verdict), and sacreBLEU's paired bootstrap over the pooled test
  sentences of the seeds both have (test-set variation only, shown for what it measures)."""
  best = max(groups, key=lambda key: statistics.mean(r["bleu"] for r in groups[key]))
  others = [key for key in groups if key != best]
  tests = stats.compare([r["bleu"] for r in groups[best]],
                        {key: [r["bleu"] for r in groups[key]] for key in others})
  rows, signature = [], ""
  for key in others:
    test = tests[key]
    seeds = sorted({r["seed"] for r in groups[best]} & {r["seed"] for r in groups[key]})
    bootstrap = "–"
    if seeds:
      pick = lambda k, field: [x for r in groups[k] if r["seed"] in seeds for x in r[field]]
      signature, (_, other) = evaluate.paired_bootstrap(
          [(_name(*best), pick(best, "hypotheses")), (_name(*key), pick(key, "hypotheses"))],
          pick(best, "references"))
      bootstrap = f"{other['p_value']:.4f}"
    rows.append([_name(*best), common.mean_std([r["bleu"] for r in groups[best]]), _name(*key),
                 common.mean_std([r["bleu"] for r in groups[key]]),
                 f"{len(groups[best])} / {len(groups[key])}", f"{test['difference']:+.2f}",
                 stats.format_p(test["p"]), stats.format_p(test["p_holm"]), test["verdict"], bootstrap])
  return signature, rows


def write(root, preset: str, report_dir) -> list[pathlib.Path]:
  root, report_dir = pathlib.Path(root), pathlib.Path(report_dir)
  groups = _load(root)
  if not groups:
    raise SystemExit(f"no finished runs under {root}; run `python -m experiments.scores.run "
                     f"--preset {preset}` first")
  report_dir.mkdir(parents=True, exist_ok=True)
  falls = {key: [last_fall(r["curve"]) for r in runs] for key, runs in groups.items()}
  rows = [[score, _attention(local), "yes" if feed else "no", len(runs), runs[0]["step"],
           common.mean_std([r["val_ppl"] for r in runs]), common.mean_std(falls[score, local, feed]),
           common.mean_std([r["test_ppl"] for r in runs]), common.mean_std([r["bleu"] for r in runs]),
           common.mean_std([r["largest_weight"] for r in runs]), common.mean_std([r["aer"] for r in runs], 3)]
          for (score, local, feed), runs in groups.items()]
  falling = [_name(*key) for key, values in falls.items()
             if any(v is not None and v >= FLAT for v in values)]
  seed_rows = [[score, _attention(local), "yes" if feed else "no", r["seed"], r["val_ppl"],
                r["test_ppl"] or "–", r["bleu"], "–" if r["aer"] is None else f"{r['aer']:.3f}"]
               for (score, local, feed), runs in groups.items() for r in runs]
  luong = {key: runs for key, runs in groups.items() if key[0] in LUONG}
  signature, sig_rows = significance(luong)
  grid = root / "grid.json"  # the preset's runs, written by the run script
  finished = {r["name"] for runs in groups.values() for r in runs}
  first = next(iter(groups.values()))[0]
  md = report_dir / f"results_{preset}.md"
  png, curves = report_dir / f"scores_{preset}.png", report_dir / f"curves_{preset}.png"
  md.write_text(
      f"# Luong attention: scores, global and local, input feeding ({preset} preset)\n\n"
      f"Machine: {common.machines(r['workdir'] for runs in groups.values() for r in runs)}. "
      f"Corpus: {common.corpus_of(first['workdir'])}. Validation perplexity at the last step, test perplexity and greedy test BLEU (sacreBLEU), "
      "mean ± standard deviation over seeds (Luong et al. 2015, Table 4); 'last fall' is how much "
      "the validation perplexity fell over the last evaluation interval, in per cent; 'largest "
      "weight' is the largest share of a target piece's attention on one source piece (greedy "
      f"translations of {evaluators.SHARPNESS_SENTENCES} test sentences); AER is the teacher-forced attention's "
      "alignment error rate against the corpus's gold word alignments, argmax per target word "
      "(lower is better; – where the corpus has no gold).\n\n"
      + common.table(["score", "attention", "input feeding", "seeds", "steps", "val ppl", "last fall %",
                      "test ppl", "test BLEU", "largest weight", "AER"], rows)
      + (f"\nStill falling by {FLAT:g} % or more at the end, so compared at equal steps rather than "
         f"at convergence: {', '.join(falling)}.\n" if falling else
         f"\nEvery variant's validation perplexity fell less than {FLAT:g} % over its last interval.\n")
      + common.missing(json.loads(grid.read_text())["runs"] if grid.exists() else sorted(finished), finished)
      + luong_claims(luong)
      + "\n## Significance against the best variant\n\n"
      + ("Luong's variants only (other models: the section below). The verdict is a test over "
         "training runs: Welch's t on the per-seed test BLEU of the best variant (by mean) and each "
         "other, with Holm's correction over this table's comparisons; "
         f"'significant' only where the corrected p < {stats.ALPHA}. The last column is sacreBLEU's "
         f"paired bootstrap (`{signature}`) over the pooled test sentences of the seeds both have: "
         "it measures how the scores would move on another test set, not on another training "
         "run, and decides nothing here.\n\n"
         + common.table(["best", "BLEU", "against", "BLEU", "seeds", "difference", "Welch p",
                         "Holm p", "verdict", "sentence bootstrap p"], sig_rows)
         if sig_rows else "Only one variant has finished; nothing to compare.\n")
      + others_against_luong(groups)
      + "\n## Every run\n\n"
      + common.table(["score", "attention", "input feeding", "seed", "val ppl", "test ppl", "test BLEU",
                      "AER"], seed_rows)
      + f"\n![BLEU by score]({png.name})\n\n![Validation perplexity]({curves.name})\n")

  variants = list(dict.fromkeys((score, local) for score, local, _ in groups))
  fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(variants)), 4))
  for offset, feed in ((-0.2, 1), (0.2, 0)):
    xs, means, stds = [], [], []
    for i, (score, local) in enumerate(variants):
      bleus = [r["bleu"] for r in groups.get((score, local, feed), [])]
      if bleus:
        xs.append(i + offset)
        means.append(statistics.mean(bleus))
        stds.append(statistics.stdev(bleus) if len(bleus) > 1 else 0.0)
    ax.bar(xs, means, width=0.4, yerr=stds, capsize=3,
           label="input feeding" if feed else "no input feeding")
  ax.set_xticks(range(len(variants)),
                [score + (f"\nlocal-{local}" if local else "") for score, local in variants])
  ax.set_ylabel("test BLEU")
  ax.set_title(f"Luong attention: scores, global and local ({preset} preset; mean ± std over seeds)")
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3, axis="y")
  common.save_figure(fig, png)

  fig, ax = plt.subplots(figsize=(7, 4))
  colors = dict(zip(variants, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
  for (score, local, feed), runs in groups.items():
    for i, r in enumerate(runs):
      if r["curve"]:
        ax.plot(*zip(*r["curve"]), color=colors[score, local], linestyle="-" if feed else "--",
                alpha=0.7, label=_name(score, local, feed) if i == 0 else None)
  common.save_curves(fig, ax, curves, legend_columns=2)
  print(f"wrote {md}, {png} and {curves}")
  return [md, png, curves]


def main(argv=None) -> int:
  args = common.parser("scores", __doc__, runs=False, script="report").parse_args(argv)
  write(results_dir(args.report_dir, args.preset), args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
