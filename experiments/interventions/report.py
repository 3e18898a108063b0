r"""Experiment 5's report: what each model loses when its attention is replaced, which
Transformer heads matter, and Shift-Att's alignments.

    python -m experiments.interventions.report --preset cpu

Reads `runs_<preset>/<model>.json` in the report folder (written by `run.py`) and writes
`results_<preset>.md`, `interventions_<preset>.png` (BLEU and perplexity under each
intervention), `importance_<preset>.png` (head importance per attention kind) and
`pruning_<preset>.png` (BLEU as heads are switched off).
"""

import json
import pathlib
import statistics
import sys

from experiments import common

GOLD_PERPLEXITY_WITHIN = 1.10  # the claim checked: gold attention keeps perplexity within 10%
PERMUTE_COSTS = 10.0           # ... and a permutation costs every model at least 10 BLEU


def results_dir(report_dir, preset: str) -> pathlib.Path:
  return pathlib.Path(report_dir) / f"runs_{preset}"


def load(store: pathlib.Path) -> dict:
  return {path.stem: json.loads(path.read_text()) for path in sorted(store.glob("*.json"))}


def _permuted(values: dict) -> list[float]:
  return [v for k, v in values.items() if k.startswith("permute-") and v is not None]


def _fmt(value, digits=2):
  return "–" if value is None else f"{value:.{digits}f}"


def intervention_table(results: dict) -> str:
  rows = []
  for name, r in results.items():
    ppl, bleu = r["perplexity"], r["bleu"]
    own_ppl, own_bleu = ppl["own"], bleu["own"]
    for kind in ("own", "uniform", "permute", "gold"):
      if kind == "permute":
        p, b = _permuted(ppl), _permuted(bleu)
        p_cell, b_cell = common.mean_std(p, 3), common.mean_std(b)
        p_mean, b_mean = statistics.mean(p), statistics.mean(b)
      else:
        p_mean, b_mean = ppl.get(kind), bleu.get(kind)
        p_cell, b_cell = _fmt(p_mean, 3), _fmt(b_mean)
      ratio = "–" if p_mean is None else f"{p_mean / own_ppl:.2f}×"
      delta = "–" if b_mean is None else f"{b_mean - own_bleu:+.2f}"
      rows.append([name if kind == "own" else "", kind, p_cell, ratio, b_cell, delta])
  return common.table(["model", "attention", "test perplexity", "× own", "test BLEU", "Δ BLEU"], rows)


def aer_table(results: dict) -> str:
  rows = [[name, _fmt(r["aer"]["mean"], 3), _fmt(r["shifted_aer"]["mean"], 3), _fmt(r["aer"]["diagonal"], 3)]
          for name, r in results.items()]
  return common.table(["model", "AER (argmax)", "Shift-Att AER", "monotone diagonal"], rows)


def per_head_table(r: dict) -> str:
  rows = []
  for layer, (plain, shifted) in enumerate(zip(r["aer"]["per_head"], r["shifted_aer"]["per_head"])):
    rows.append([f"layer {layer + 1}", *(f"{a:.3f} / {s:.3f}" for a, s in zip(plain, shifted))])
  heads = len(r["aer"]["per_head"][0])
  return common.table(["AER / Shift-Att AER", *(f"head {h + 1}" for h in range(heads))], rows)


def claims(results: dict) -> list[str]:
  """The report's claims, each checked in numbers whatever they turn out to be."""
  lines = []
  costs = {name: r["bleu"]["own"] - statistics.mean(_permuted(r["bleu"])) for name, r in results.items()}
  held = all(cost >= PERMUTE_COSTS for cost in costs.values())
  lines.append(f"- **A permutation of its own weights costs every model at least {PERMUTE_COSTS:.0f} BLEU**: "
               + ("holds" if held else "does not hold") + " ("
               + ", ".join(f"{name} {cost:.1f}" for name, cost in costs.items()) + ").")
  gold = {name: r["perplexity"]["gold"] / r["perplexity"]["own"] for name, r in results.items()
          if r["perplexity"].get("gold") is not None}
  if gold:
    held = all(ratio <= GOLD_PERPLEXITY_WITHIN for ratio in gold.values())
    lines.append(f"- **The gold alignment as attention keeps perplexity within "
                 f"{(GOLD_PERPLEXITY_WITHIN - 1) * 100:.0f}% of the model's own**: "
                 + ("holds" if held else "does not hold") + " ("
                 + ", ".join(f"{name} {ratio:.2f}×" for name, ratio in gold.items()) + ").")
  uniform = {name: r["bleu"]["own"] - r["bleu"]["uniform"] for name, r in results.items()}
  lines.append("- **Uniform attention costs more BLEU than a permutation** (it keeps no sharpness): "
               + ", ".join(f"{name} {uniform[name]:.1f} against {costs[name]:.1f}" for name in results)
               + ("; holds for every model." if all(uniform[n] > costs[n] for n in results)
                  else "; not for every model."))
  for name, r in results.items():
    if "pruning" not in r:
      continue
    by_importance, randomly = (dict(r["pruning"][o]["curve"]) for o in ("importance", "random"))
    half = sorted(by_importance)[len(by_importance) // 2]
    lines.append(f"- **{name}: removing the least important heads first keeps more BLEU than a "
                 f"random order**: with {half} of {max(by_importance)} heads off, "
                 f"{by_importance[half]:.1f} against {randomly[half]:.1f} BLEU ("
                 + ("holds" if by_importance[half] >= randomly[half] else "does not hold") + ").")
    first = r["aer"]["per_head"][0], r["shifted_aer"]["per_head"][0]
    better = [h + 1 for h, (a, s) in enumerate(zip(*first)) if s < a]
    lines.append(f"- **{name}: first-layer heads whose Shift-Att AER is lower than their AER** (they "
                 f"look at the source of the word they read, not the one they predict): "
                 + (", ".join(f"head {h}" for h in better) if better else "none") + ".")
  return lines


def plot(results: dict, report_dir: pathlib.Path, preset: str) -> list[str]:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  drawn = []
  names = list(results)
  kinds = ("own", "uniform", "permute", "gold")
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  for k, kind in enumerate(kinds):
    ppl = [statistics.mean(_permuted(r["perplexity"])) if kind == "permute" else r["perplexity"].get(kind)
           for r in results.values()]
    bleu = [statistics.mean(_permuted(r["bleu"])) if kind == "permute" else r["bleu"].get(kind)
            for r in results.values()]
    x = np.arange(len(names)) + (k - 1.5) * 0.2
    axes[0].bar(x, [b if b is not None else 0 for b in bleu], 0.2, label=kind)
    axes[1].bar(x, [p if p is not None else 0 for p in ppl], 0.2, label=kind)
  for ax, label in zip(axes, ("test BLEU (greedy)", "test perplexity (teacher-forced)")):
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3, axis="y")
  axes[1].set_yscale("log")
  axes[0].legend(fontsize=8)
  common.save_figure(fig, report_dir / f"interventions_{preset}.png")
  drawn.append(f"interventions_{preset}.png")
  for name, r in results.items():
    if "importance" not in r:
      continue
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.6))
    for ax, (kind, matrix) in zip(axes, r["importance"].items()):
      matrix = np.asarray(matrix)
      image = ax.imshow(matrix, cmap="viridis", aspect="auto")
      ax.set_title(f"{kind} attention", fontsize=9)
      ax.set_xticks(range(matrix.shape[1]), [f"h{h + 1}" for h in range(matrix.shape[1])])
      ax.set_yticks(range(matrix.shape[0]), [f"layer {l + 1}" for l in range(matrix.shape[0])])
      fig.colorbar(image, ax=ax)
    common.save_figure(fig, report_dir / f"importance_{preset}.png")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for order in ("importance", "random"):
      curve = np.asarray(r["pruning"][order]["curve"])
      ax.plot(curve[:, 0], curve[:, 1], marker="o", label=f"least important first" if order == "importance"
              else "random order (seed 0)")
    ax.set_xlabel("heads switched off (of all kinds)")
    ax.set_ylabel(f"test BLEU ({r['pruning']['sentences']} sentences)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    common.save_figure(fig, report_dir / f"pruning_{preset}.png")
    drawn += [f"importance_{preset}.png", f"pruning_{preset}.png"]
  return drawn


def write(store: pathlib.Path, preset: str, report_dir) -> pathlib.Path:
  report_dir = pathlib.Path(report_dir)
  results = load(store)
  path = report_dir / f"results_{preset}.md"
  if not results:
    path.write_text(f"# Experiment 5: interventions ({preset})\n\nNo model measured yet.\n")
    return path
  any_result = next(iter(results.values()))
  machines = [r.get("provenance", {}).get("machine") for r in results.values()]
  named = list(dict.fromkeys(m for m in machines if m))
  machine = "; ".join(named + ([f"not recorded ({machines.count(None)} of {len(machines)} models, measured "
                                "before provenance was kept)"] if None in machines else []))
  lines = [f"# Experiment 5: is attention load-bearing? ({preset})", "",
           f"Machine: {machine}. "
           f"`python -m experiments.interventions.run --preset {preset}`; each model's test split "
           f"({any_result['corpus']}): teacher-forced perplexity on all of it, greedy BLEU on "
           f"{any_result['test_pairs']} pairs. `permute`: mean ± std over seeds "
           f"{', '.join(map(str, (0, 1, 2)))}.", "",
           "## The cross-attention replaced", "", intervention_table(results),
           "## Alignment, and alignment read one step late (Shift-Att)", "", aer_table(results)]
  for name, r in results.items():
    if len(r["aer"]["per_head"]) * len(r["aer"]["per_head"][0]) > 1:
      lines += [f"{name}, per layer and head:", "", per_head_table(r)]
  lines += ["## Claims, checked", "", *claims(results), ""]
  for picture in plot(results, report_dir, preset):
    lines += [f"![{picture}]({picture})", ""]
  path.write_text("\n".join(lines))
  print(f"wrote {path}")
  return path


def main(argv=None) -> int:
  args = common.parser("interventions", __doc__, runs=False, script="report").parse_args(argv)
  write(results_dir(args.report_dir, args.preset), args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
