r"""Experiment 6's report: the time, steps, target tokens and FLOPs each family takes to reach a
validation perplexity and a validation BLEU, over seeds, with the learning curves against time
and against FLOPs.

    python -m experiments.quality.report --preset cpu [--target_bleu B] [--target_ppl P]

Reads every run folder `<family>-seed<s>/` under `<report_dir>/runs_<preset>/` (the result files
the run script keeps there: `metrics.jsonl`, `config.json`, `train_done.json`, `provenance.json`,
and `grid.json`, the preset's runs) and writes `results_<preset>.md`, `results_<preset>.json` and
`curves_<preset>.png` into the report folder.

The targets. Unless given, they come from the pilot, seed 0 (every family's first run): the
BLEU target is 90 % of the best validation BLEU that the weakest family's pilot reaches, the
perplexity target 10 % above the lowest validation perplexity that the weakest family's pilot
reaches (BLEU rounded down to one decimal, perplexity up to two), so that every family reaches
both and the target still asks for most of what the weakest can do. Where some families have no
attention, the weakest of them sets a target the attentive families pass almost at once, so a
second pair of targets comes from the weakest attentive family's pilot in the same way: the
comparison between the attentive families is made at a quality that asks something of them, and
the families without attention are shown against it too (the seeds that reach it). A run reaches
a target at the first validation that meets it: the figures are those of that validation, so
they overstate the true cost by at most one validation interval.

Wall time is the training steps' (validation excluded, the first steps' compilation included) on
the machine each run names; runs of one preset ran one at a time on one machine. FLOPs are three
times the forward matrix products of each batch's padded shape (`attnjax/models/flops.py`).
The verdict is a test over training runs: the family with the least mean time to the BLEU target
against each other family (Welch's t on the per-seed times, Holm's correction over the
comparisons), and the same for FLOPs; a family that misses the target in any seed is not tested.
"""

import json
import math
import pathlib
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from attnjax import models  # noqa: E402
from attnjax.analysis import stats  # noqa: E402
from experiments import common  # noqa: E402

RUN = re.compile(r"(?P<family>\w+)-seed(?P<seed>\d+)")
PILOT_SEED = 0
BLEU_SHARE = 0.9  # the BLEU target: this share of the weakest family's best pilot BLEU
PPL_MARGIN = 1.1  # the perplexity target: this multiple of the weakest family's lowest pilot perplexity
COSTS = ("train_s", "step", "tgt_tokens", "train_flops")  # what a run has spent at a validation


def results_dir(report_dir, preset: str) -> pathlib.Path:
  """Where the run script keeps each finished run's result files, and the report reads them."""
  return pathlib.Path(report_dir) / f"runs_{preset}"


def validations(metrics_path: pathlib.Path) -> list[dict]:
  """The validation records of a training log, by step (a resumed run's repeated steps: the last)."""
  by_step = {}
  for line in metrics_path.read_text().splitlines():
    record = json.loads(line)
    if "val_ppl" in record:
      by_step[record["step"]] = record
  return [by_step[step] for step in sorted(by_step)]


def load(root: pathlib.Path) -> dict[str, list[dict]]:
  """{family: [run, ...]} of the finished runs under `root`, in seed order."""
  families = {}
  for folder in sorted(root.iterdir()) if root.exists() else []:
    match = RUN.fullmatch(folder.name)
    if not match or not (folder / "train_done.json").exists():
      continue
    cell = json.loads((folder / "provenance.json").read_text())["cell"]
    curve = validations(folder / "metrics.jsonl")
    model = json.loads((folder / "config.json").read_text())["model"]
    families.setdefault(match["family"], []).append(
        {"name": folder.name, "workdir": folder, "seed": int(match["seed"]), "curve": curve,
         "parameters": cell.get("parameters"), "config": cell.get("config"),
         "attends": models.attends(model)})
  for runs in families.values():
    runs.sort(key=lambda run: run["seed"])
  return families


def pilot_targets(families: dict) -> tuple[float | None, float | None]:
  """(BLEU target, perplexity target) from the pilot runs (seed 0) of `families`, as the module
  says; None where no pilot has finished or it measured no BLEU."""
  pilots = [run["curve"] for runs in families.values() for run in runs if run["seed"] == PILOT_SEED]
  bleus = [max(r["val_bleu"] for r in curve if "val_bleu" in r) for curve in pilots
           if any("val_bleu" in r for r in curve)]
  ppls = [min(r["val_ppl"] for r in curve) for curve in pilots if curve]
  # rounded to 6 places first, so that 1.1 x 3.0 = 3.3000000000000003 is 3.3, not 3.31
  bleu = math.floor(round(10 * BLEU_SHARE * min(bleus), 6)) / 10 if bleus else None
  ppl = math.ceil(round(100 * PPL_MARGIN * max(ppls), 6)) / 100 if ppls else None
  return bleu, ppl


EVERY, ATTENTIVE = "the weakest family's pilot", "the weakest attentive family's pilot"


def targets(families: dict, bleu: float | None = None, ppl: float | None = None) -> list[dict]:
  """The tiers of targets the report reads every run at, each {"tier", "bleu", "ppl", "bleu_from",
  "ppl_from"}: where a target is given, one tier (the other target from every family's pilot);
  else every family's pilot and, where some families attend and some do not, the attentive
  families' pilot (the module's "The targets")."""
  every = dict(zip(("bleu", "ppl"), pilot_targets(families)))
  given = {"bleu": bleu, "ppl": ppl}
  if bleu is not None or ppl is not None:
    tier = {"tier": "given"}
    for key, value in given.items():
      tier[key], tier[f"{key}_from"] = (every[key], EVERY) if value is None else (value, "given")
    return [tier]
  tiers = [{"tier": "every family", **every, "bleu_from": EVERY, "ppl_from": EVERY}]
  attentive = {family: runs for family, runs in families.items() if all(run["attends"] for run in runs)}
  if attentive and len(attentive) < len(families):
    tiers.append({"tier": "the attentive families", **dict(zip(("bleu", "ppl"), pilot_targets(attentive))),
                  "bleu_from": ATTENTIVE, "ppl_from": ATTENTIVE})
  return tiers


def reached(curve: list[dict], field: str, target: float) -> dict | None:
  """What the run had spent at its first validation meeting the target (BLEU at least, perplexity
  at most), or None if none did."""
  for record in curve:
    if field in record and (record[field] >= target if field == "val_bleu" else record[field] <= target):
      return {cost: record.get(cost) for cost in COSTS}
  return None


def _spread(values, digits: int = 0, scale: float = 1.0) -> str:
  """'median (min-max)' of the values, scaled; '–' when there are none."""
  values = [v / scale for v in values if v is not None]
  if not values:
    return "–"
  if len(values) == 1:
    return f"{values[0]:,.{digits}f}"
  return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def summarise(families: dict, tiers: list[dict]) -> dict:
  """Per family: its size and rate, and per tier of targets (`targets`) the cost to reach each
  target in each seed, as "reached": [{"val_bleu": [...], "val_ppl": [...]}, ...]."""
  out = {}
  for family, runs in families.items():
    last = [run["curve"][-1] for run in runs if run["curve"]]
    row = {"seeds": [run["seed"] for run in runs], "parameters": runs[0]["parameters"],
           "config": runs[0]["config"], "steps": [r["step"] for r in last],
           "flops_per_token": [r["train_flops"] / r["tgt_tokens"] for r in last if r.get("train_flops")],
           "tokens_per_s": [r["tgt_tokens"] / r["train_s"] for r in last],
           "best_bleu": [max((r["val_bleu"] for r in run["curve"] if "val_bleu" in r), default=None)
                         for run in runs],
           "last_ppl": [r["val_ppl"] for r in last], "attends": all(run["attends"] for run in runs)}
    row["reached"] = [{field: [reached(run["curve"], field, tier[key]) for run in runs]
                       for field, key in (("val_bleu", "bleu"), ("val_ppl", "ppl")) if tier[key] is not None}
                      for tier in tiers]
    out[family] = row
  return out


def _hits(row: dict, tier: int, field: str) -> list:
  return row["reached"][tier].get(field, [])


def verdicts(summary: dict, tier: int, field: str, cost: str) -> tuple[str | None, dict]:
  """(the family with the least mean `cost` to tier `tier`'s `field` target, {other family:
  stats.compare's row}) over the families that reached it in every seed; (None, {}) if fewer
  than two did."""
  complete = {family: [hit[cost] for hit in _hits(row, tier, field)] for family, row in summary.items()
              if _hits(row, tier, field) and all(hit is not None and hit[cost] is not None
                                                 for hit in _hits(row, tier, field))}
  if len(complete) < 2:
    return None, {}
  best = min(complete, key=lambda family: statistics.mean(complete[family]))
  return best, stats.compare(complete[best], {f: v for f, v in complete.items() if f != best})


def _target_table(summary: dict, tier: int, field: str) -> str:
  rows = []
  for family, row in summary.items():
    hits = _hits(row, tier, field)
    done = [h for h in hits if h is not None]
    rows.append([family, f"{len(done)} of {len(hits)}",
                 _spread([h["train_s"] for h in done]), _spread([h["step"] for h in done]),
                 _spread([h["tgt_tokens"] for h in done], 2, 1e6),
                 _spread([h["train_flops"] for h in done], 2, 1e12)])
  return common.table(["family", "seeds reaching it", "wall s", "steps", "M target tokens",
                       "TFLOP"], rows)


def _verdict_table(summary: dict, tier: int, field: str) -> str:
  lines = []
  for cost, unit, scale in (("train_s", "s", 1.0), ("train_flops", "TFLOP", 1e12)):
    best, rows = verdicts(summary, tier, field, cost)
    if best is None:
      lines.append(f"- {cost}: fewer than two families reached it in every seed; nothing tested.\n")
      continue
    lines.append(f"- {'wall time' if cost == 'train_s' else 'FLOPs'}: the least is {best}'s; against it, "
                 + "; ".join(f"{other} {r['difference'] / -scale:+,.2f} {unit} (Holm p "
                             f"{stats.format_p(r['p_holm'])}, {r['verdict']})" for other, r in rows.items()) + ".\n")
  return "".join(lines)


def _source(tier: dict, key: str) -> str:
  """Where a tier's target comes from, in its heading."""
  source = tier[f"{key}_from"]
  return source if source == "given" else f"from {source}"


def write(root, preset: str, report_dir, target_bleu: float | None = None,
          target_ppl: float | None = None) -> list[pathlib.Path]:
  root, report_dir = pathlib.Path(root), pathlib.Path(report_dir)
  families = load(root)
  if not families:
    raise SystemExit(f"no finished runs under {root}; run `python -m experiments.quality.run "
                     f"--preset {preset}` first")
  tiers = targets(families, target_bleu, target_ppl)
  summary = summarise(families, tiers)
  report_dir.mkdir(parents=True, exist_ok=True)
  md, data, png = (report_dir / f"results_{preset}.md", report_dir / f"results_{preset}.json",
                   report_dir / f"curves_{preset}.png")
  grid = root / "grid.json"
  finished = {run["name"] for runs in families.values() for run in runs}
  first = next(iter(families.values()))[0]
  size_rows = [[family, row["config"] or "–", "–" if row["parameters"] is None else f"{row['parameters']:,}",
                ", ".join(map(str, row["seeds"])), _spread(row["steps"]),
                _spread(row["flops_per_token"], 2, 1e6), _spread(row["tokens_per_s"]),
                common.mean_std(row["best_bleu"]), common.mean_std(row["last_ppl"], 3)]
               for family, row in summary.items()]
  text = (f"# Time to quality: each family trained to a validation target ({preset} preset)\n\n"
          f"Machine: {common.machines(run['workdir'] for runs in families.values() for run in runs)}. "
          f"Corpus: {common.corpus_of(first['workdir'])}. Figures over seeds are the median "
          "(min-max), or mean ± standard deviation where so headed; wall time is the training "
          "steps' (validation excluded, compilation included).\n\n"
          + common.table(["family", "config", "parameters", "seeds", "steps", "MFLOP per target token",
                          "target tokens/s", "best val BLEU", "last val ppl"], size_rows)
          + common.missing(json.loads(grid.read_text())["runs"] if grid.exists() else sorted(finished), finished))
  for i, tier in enumerate(tiers):
    for field, key, words in (("val_bleu", "bleu", "validation BLEU at least"),
                              ("val_ppl", "ppl", "validation perplexity at most")):
      if tier[key] is None:
        text += f"\n## {words}: no target (no pilot run measured it)\n"
        continue
      text += (f"\n## To a {words} {tier[key]:g} ({_source(tier, key)})\n\n"
               + _target_table(summary, i, field) + "\n" + _verdict_table(summary, i, field))
  text += f"\n![learning curves against time and FLOPs]({png.name})\n"
  md.write_text(text)
  data.write_text(json.dumps({"targets": tiers, "families": summary},
                             indent=2, default=str) + "\n")
  _plot(families, tiers, preset, png)
  print(f"wrote {md}, {data} and {png}")
  return [md, data, png]


def _plot(families: dict, tiers: list[dict], preset: str, path: pathlib.Path) -> None:
  fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharey="row")
  colors = dict(zip(families, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
  for row, (field, key, label) in enumerate((("val_bleu", "bleu", "validation BLEU"),
                                             ("val_ppl", "ppl", "validation perplexity"))):
    for col, (cost, scale, xlabel) in enumerate((("train_s", 1.0, "training wall time (s)"),
                                                 ("train_flops", 1e12, "training TFLOP"))):
      ax = axes[row][col]
      for family, runs in families.items():
        for i, run in enumerate(runs):
          points = [(r[cost] / scale, r[field]) for r in run["curve"] if field in r and r.get(cost)]
          if points:
            ax.plot(*zip(*points), color=colors[family], alpha=0.8, marker=".",
                    label=family if i == 0 else None)
      for tier, style in zip(tiers, (":", "--")):
        if tier[key] is not None:
          ax.axhline(tier[key], color="grey", linestyle=style, label=f"target: {tier['tier']}")
      ax.set_xlabel(xlabel)
      ax.set_ylabel(label)
      ax.grid(alpha=0.3)
      if field == "val_ppl":
        ax.set_yscale("log")
  axes[0][0].legend(fontsize=7)
  fig.suptitle(f"Learning curves against time and FLOPs ({preset} preset; one line a seed)")
  common.save_figure(fig, path)


def main(argv=None) -> int:
  p = common.parser("quality", __doc__, runs=False, script="report")
  p.add_argument("--target_bleu", type=float, default=None, help="the BLEU target (default: from the pilot)")
  p.add_argument("--target_ppl", type=float, default=None, help="the perplexity target (default: from the pilot)")
  args = p.parse_args(argv)
  write(results_dir(args.report_dir, args.preset), args.preset, args.report_dir, args.target_bleu,
        args.target_ppl)
  return 0


if __name__ == "__main__":
  sys.exit(main())
