"""The table of `attnjax bench` JSON lines (and the Flax WMT example's, `flax_wmt.py`) that
experiments/gpu/run.sh prints at its end, and the MFU ablation's (`ablation.py`) from the
ablation.jsonl beside them, where there is one.

    python experiments/gpu/summary.py experiments/gpu/results/bench.jsonl [SECONDS]
"""

import json
import pathlib
import sys


def table(runs: list[dict], seconds: str = "") -> str:
  """One table per device and JAX version, in the order first seen (a results file that several
  runs appended to may hold more than one)."""
  if not runs:
    return "no bench results"
  groups: dict[tuple, list[dict]] = {}
  for r in runs:
    groups.setdefault((r["device"], r["version"], r["peak_flops"], r["peak_flops_source"]), []).append(r)
  out = []
  for (device, version, peak, source), rows in groups.items():
    out += [f"{device}; jax {version}; peak {peak / 1e12:.3g} TFLOP/s ({source})"
            + (f"; {seconds} s in all" if seconds and not out else ""), "",
            f"{'model':19} {'dtype':8} {'task':6} {'beam':>4} {'batch':>5} {'src':>5} {'tgt':>5} {'params':>7} "
            f"{'ms/step':>9} {'tgt tok/s':>10} {'TFLOP/s':>8} {'MFU':>6} {'memory GiB':>10}"]
    for r in rows:
      memory = r["device_peak_memory_bytes"] or r["peak_memory_bytes"] or 0
      model = r["model"] if r.get("framework", "jax") == "jax" else "flax-wmt"
      if r.get("encoder_impl") == "cudnn":
        model += " cudnn"
      if r.get("scan"):
        model += {"associative": " assoc", "sequential": " seq"}.get(r["scan"], f" {r['scan']}")  # minGRU's walk
      if r.get("loss_chunk"):
        model += f" chunk {r['loss_chunk']}"
      out.append(
          f"{model:19} {r['dtype']:8} {r['task']:6} {r['beam'] or '':>4} {r['batch']:>5} {r['src_len']:>5} "
          f"{r['tgt_len']:>5} {r['params'] / 1e6:6.1f}M {r['step_s_median'] * 1e3:9.2f} "
          f"{r['tgt_tokens_per_s']:10,.0f} {r['model_flops_per_step'] / r['step_s_median'] / 1e12:8.1f} "
          f"{r['mfu']:6.1%} {memory / 2 ** 30:10.2f}")
    out.append("")
  return "\n".join(out).rstrip()


def _range(ms: dict) -> str:
  return f"{ms['median']:8.2f} ({ms['min']:.2f}-{ms['max']:.2f})"


def ablation_table(rows: list[dict]) -> str:
  """One table per device, JAX version and baseline (bench flags): each lever's step against the
  baseline's rounds beside it, median (min-max) ms, the ratio, target tokens/s and MFU."""
  groups: dict[tuple, list[dict]] = {}
  for r in rows:
    groups.setdefault((r["device"], r["version"], " ".join(r["bench_flags"])), []).append(r)
  out = []
  for (device, version, flags), group in groups.items():
    out += [f"MFU ablation: {device}; jax {version}; peak {group[0]['peak_flops'] / 1e12:.3g} TFLOP/s "
            f"({group[0]['peak_flops_source']}); baseline `attnjax bench {flags}`", "",
            f"{'lever':21} {'baseline ms (min-max)':>24} {'lever ms (min-max)':>24} {'ratio':>6} "
            f"{'tgt tok/s':>10} {'MFU':>13}  side by side"]
    for r in group:
      out.append(f"{r['lever']:21} {_range(r['baseline_ms']):>24} {_range(r['variant_ms']):>24} "
                 f"{r['ratio']:6.3f} {r['tgt_tokens_per_s']:10,.0f} "
                 f"{r['baseline_mfu']:5.1%} -> {r['mfu']:5.1%}  {r['side_by_side']}"
                 + (f" ({r['note']})" if r.get("note") else ""))
    out.append("")
  return "\n".join(out).rstrip()


def main(argv) -> int:
  with open(argv[1]) as f:
    runs = [json.loads(line) for line in f if line.strip()]
  print("\n" + table(runs, argv[2] if len(argv) > 2 else ""))
  ablation = pathlib.Path(argv[1]).with_name("ablation.jsonl")
  if ablation.exists():
    rows = [json.loads(line) for line in ablation.read_text().splitlines() if line.strip()]
    if rows:
      print("\n" + ablation_table(rows))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
