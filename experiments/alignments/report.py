r"""Experiment 2's report: each model's alignment error rate and heatmaps, from the kept results.

    python -m experiments.alignments.report --preset cpu

Reads `<report_dir>/runs_<preset>/<model>.json` (kept by the run script, in the order of its
`grid.json`) and writes `results_<preset>.md` (the AER table, then the sources, references, each
model's output and the heatmaps), `aer_<preset>.json` (each model's `Trained.alignment_error`
report) and `<preset>/<model>_<k>.png`, `<preset>/<model>_aer.png` into the report folder: a
pure function of the kept results, so a test rebuilds it.
"""

import json
import pathlib
import sys

from experiments import common


def results_dir(report_dir, preset: str) -> pathlib.Path:
  """Where the run script keeps each model's figures, and the report reads them."""
  return pathlib.Path(report_dir) / f"runs_{preset}"


def _load(kept: pathlib.Path) -> tuple[list[dict], list[str]]:
  """The kept results in the run script's order, and the names it asked for."""
  grid = kept / "grid.json"
  names = (json.loads(grid.read_text())["runs"] if grid.exists() else
           sorted(p.stem for p in kept.glob("*.json")))
  return [json.loads((kept / f"{n}.json").read_text()) for n in names if (kept / f"{n}.json").exists()], names


def write(kept, preset: str, report_dir) -> list[pathlib.Path]:
  """The report of the results kept in `kept`."""
  import numpy as np
  from attnjax.analysis import viz
  kept, report_dir = pathlib.Path(kept), pathlib.Path(report_dir)
  results, names = _load(kept)
  if not results:
    raise SystemExit(f"no kept results under {kept}; run `python -m experiments.alignments.run "
                     f"--preset {preset}` first")
  image_dir = report_dir / preset
  image_dir.mkdir(parents=True, exist_ok=True)
  errors = {r["name"]: r["aer"] for r in results if r["aer"] is not None}
  written = [_plot_per_head(report, name, image_dir / f"{name}_aer.png")
             for name, report in errors.items() if report["layers"] * report["heads"] > 1]
  models = [r for r in results if r["drawn"] is not None]
  for r in models:
    for k, case in enumerate(r["drawn"]):
      if case["weights"] is not None:
        path = image_dir / f"{r['name']}_{k}.png"
        viz.plot_alignment(np.asarray(case["weights"], np.float32), case["src_words"], case["tgt_words"],
                           path, per_head=True)
        case["image"] = path
        written.append(path)
  machines = common.describe_machines([r["provenance"]["machine"] for r in results])
  text = [f"# Alignments ({preset} preset)\n\nModels trained on {', '.join(sorted({r['corpus'] for r in results}))}. "
          f"Machine: {machines}.\n\n",
          _aer_section(errors, image_dir, report_dir),
          "".join(f"\n{r['name']}: {r['skipped']}.\n" for r in results if r["skipped"]),
          common.missing(names, {r["name"] for r in results}),
          "\n## Heatmaps\n\n"
          "Source words along x, target words along y, greedy decoding (Bahdanau et al. 2015, "
          "Figure 3); a word's weight is the sum over its source pieces and the mean over its "
          "target pieces. For the Transformer: the cross-attention's mean over layers and heads "
          "first, then each layer and head.\n\n",
          common.table(["model", "trained on", "step"], [[r["name"], r["trained_on"], r["step"]] for r in models])]
  for r in models:
    text.append(f"\n### {r['name']}\n\n")
    text.append(common.table(["phenomenon", "source", "reference", "output"],
                             [[c["what"], c["source"], c["reference"], c["output"]] for c in r["drawn"]]))
    for c in r["drawn"]:
      text.append(f"\n**{c['what']}**: {c['source']}\n\n" +
                  (f"![{r['name']}: {c['source']}]({c['image'].relative_to(report_dir)})\n" if "image" in c else
                   "(no attention: this model has no alignment to draw)\n"))
  md = report_dir / f"results_{preset}.md"
  md.write_text("".join(t if t.endswith("\n") else t + "\n" for t in text if t))
  aer_json = report_dir / f"aer_{preset}.json"
  aer_json.write_text(json.dumps(errors, indent=2) + "\n")
  print(f"wrote {md}, {aer_json} and {len(written)} images in {image_dir}")
  return [md, aer_json, *written]


def _aer_section(errors: dict, image_dir: pathlib.Path, report_dir: pathlib.Path) -> str:
  if not errors:
    return "No model with attention: no alignment error rate.\n"
  first = next(iter(errors.values()))
  lines = ["## Alignment error rate\n\n",
           f"Teacher-forced cross-attention on {first['sentences']} test pairs against the gold "
           "word alignments (Och & Ney 2003: lower is better, 0 is perfect), links by argmax per "
           f"target word and by the fewest source words holding {first['mass']:.1f} of its weight; "
           "for several layers or heads, of their mean map. The monotone diagonal is the "
           "baseline: target word j linked to the source word at the same relative place.\n\n",
           common.table(["model", "layers × heads", "AER, argmax", f"AER, mass {first['mass']:.1f}",
                         "diagonal", "best head (argmax)"],
                        [[name, f"{r['layers']} × {r['heads']}", f"{r['aer']['argmax']:.3f}",
                          f"{r['aer']['mass']:.3f}", f"{r['diagonal']:.3f}", _best_head(r)]
                         for name, r in errors.items()])]
  for name, r in errors.items():
    image = image_dir / f"{name}_aer.png"
    if image.exists():
      lines.append(f"\n{name}, AER (argmax) per layer and head:\n\n"
                   f"![{name} AER per head]({image.relative_to(report_dir)})\n")
  return "".join(lines)


def _best_head(report: dict) -> str:
  if report["layers"] * report["heads"] == 1:
    return ""
  cells = [(value, l, h) for l, row in enumerate(report["per_head"]["argmax"])
           for h, value in enumerate(row)]
  value, l, h = min(cells)
  return f"layer {l + 1} head {h + 1}: {value:.3f}"


def _plot_per_head(report: dict, name: str, path: pathlib.Path) -> pathlib.Path:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  grid = np.array(report["per_head"]["argmax"])
  fig, ax = plt.subplots(figsize=(1.2 * grid.shape[1] + 2, 0.9 * grid.shape[0] + 1.5))
  image = ax.imshow(grid, cmap="viridis_r", vmin=0, vmax=1)
  for (l, h), value in np.ndenumerate(grid):
    ax.text(h, l, f"{value:.2f}", ha="center", va="center", color="white" if value > 0.5 else "black")
  ax.set_xticks(range(grid.shape[1]), [f"head {h + 1}" for h in range(grid.shape[1])])
  ax.set_yticks(range(grid.shape[0]), [f"layer {l + 1}" for l in range(grid.shape[0])])
  ax.set_title(f"{name}: AER (argmax) per cross-attention head\nmean map {report['aer']['argmax']:.3f}, "
               f"diagonal {report['diagonal']:.3f}", fontsize=9)
  fig.colorbar(image, ax=ax, fraction=0.05)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def main(argv=None) -> int:
  args = common.parser("alignments", __doc__, runs=False, script="report").parse_args(argv)
  write(results_dir(args.report_dir, args.preset), args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
