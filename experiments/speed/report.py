"""runs.jsonl (from run.py) -> results.md: medians, ratios, targets, the machine.

    python experiments/speed/report.py [runs.jsonl] [results.md]
"""

import json
import os
import pathlib
import statistics
import sys

HERE = pathlib.Path(__file__).resolve().parent


def machine() -> dict:
  """The CPU model, cores, memory and load average of this machine, now."""
  from attnjax.speed.bench import cpu_model
  cpu = cpu_model("unknown")
  memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
  return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory, 1),
          "load_before": [round(x, 2) for x in os.getloadavg()]}


def load() -> dict:
  return {"load_after": [round(x, 2) for x in os.getloadavg()]}


def _check(target: str, ratio: float) -> str:
  if ">=" not in target and "<=" not in target:
    return ""  # a measurement without a target
  kind, bound = target.split(">=") if ">=" in target else target.split("<=")
  met = ratio >= float(bound) if ">=" in target else ratio <= float(bound)
  return "met" if met else "**missed**"


def _rows(records):
  """One summary per comparison, in the order run.py ran them."""
  order = list(dict.fromkeys(r["comparison"] for r in records))
  for key in order:
    runs = [r for r in records if r["comparison"] == key]
    a = [r for r in runs if r["side"] == "A"]
    b = [r for r in runs if r["side"] == "B"]
    a_s = statistics.median(r["result"]["step_s_median"] for r in a)
    b_s = statistics.median(r["result"]["step_s_median"] for r in b)
    pairs = [rb["result"]["step_s_median"] / ra["result"]["step_s_median"]
             for ra, rb in zip(a, b)]
    target = runs[0]["target"]
    speedup = target.startswith("speedup")
    ratio = b_s / a_s if speedup else a_s / b_s
    pair_ratios = pairs if speedup else [1 / x for x in pairs]
    yield {"key": key, "title": runs[0]["title"], "target": target, "a": a, "b": b,
           "a_s": a_s, "b_s": b_s, "ratio": ratio, "pairs": len(pairs),
           "spread": (min(pair_ratios), max(pair_ratios)), "verdict": _check(target, ratio)}


def _median_of(runs, field):
  values = [r["result"].get(field) for r in runs if r["result"].get(field) is not None]
  return statistics.median(values) if values else None


def _huge_pages(records) -> list:
  """A sentence on who ran with transparent huge pages (runs before the field existed: none)."""
  said = {}
  for r in records:
    if "huge_pages" in r["result"]:
      said.setdefault(r["result"]["framework"], set()).add(r["result"]["huge_pages"])
  if not said:
    return []
  name = {"jax": "attnjax", "torch": "the PyTorch peer"}
  state = lambda s: "on" if s == {True} else "off" if s == {False} else "on in some runs"
  return ["", "Transparent huge pages (`attnjax/speed/hugepages.py`): " + ", ".join(
      f"{name.get(k, k)} {state(v)}" for k, v in sorted(said.items())) + "."]


def format_results(lines) -> str:
  rows = [json.loads(l) for l in lines if l.strip()]
  header = dict(rows[0]["machine"], **(rows[-1].get("end") or {}))
  records = [r for r in rows if "comparison" in r]
  out = ["# Speed: attnjax against the PyTorch reference", "",
         f"Measured {header.get('date', '(unfinished run)')} by `python experiments/speed/run.py` on {header['cpu']}, "
         f"{header['cores']} cores, {header['memory_gib']} GiB; load average (1/5/15 min) "
         f"{header['load_before']} before and {header.get('load_after', '?')} after; the whole run took "
         f"{header.get('runtime_s', float('nan')) / 60:.1f} min. Each side's figure is the median over its runs of "
         "the per-run median step (protocol: 3 warm-up steps, 10 timed; fewer where the flags say so: "
         "the PyTorch decodes 1 and 3 at 32 tokens, 1 and 2 at 64; the remat pair 1 and 3). Ratio = the peer's median step over attnjax's "
         "(speedup), or attnjax A over attnjax B (cost); spread = the lowest and highest pair's ratio.",
         ] + _huge_pages(records) + [
         "", "| comparison | A: attnjax s/step | B s/step | A tokens/s | B tokens/s | ratio | spread | "
         "pairs | target | |", "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |"]
  rows = list(_rows(records))
  for r in rows:
    a_tok, b_tok = _median_of(r["a"], "tgt_tokens_per_s"), _median_of(r["b"], "tgt_tokens_per_s")
    kind = "speedup" if r["target"].startswith("speedup") else "cost"
    out.append(f"| {r['title']} | {r['a_s']:.3f} | {r['b_s']:.3f} | {a_tok:,.0f} | {b_tok:,.0f} | "
               f"{kind} {r['ratio']:.2f}x | {r['spread'][0]:.2f}-{r['spread'][1]:.2f} | {r['pairs']} | "
               f"{r['target'].replace('>=', ' >= ').replace('<=', ' <= ') if r['verdict'] else '-'} | "
               f"{r['verdict']} |")
  out += ["", "attnjax runs in detail (medians over runs): model FLOPs counted as 2mnk per matrix "
          "product (training = 3x forward), XLA's own count (a loop body counted once), MFU "
          "against the measured float32 2048x2048 matmul rate of the same run, and the compiled "
          "step's memory (arguments + outputs + temporaries - donated).", "",
          "| run | flags | model GFLOP | XLA GFLOP | matmul GFLOP/s | MFU | memory MiB | compile s |",
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
  for r in rows:
    for side in ("a", "b"):
      runs = r[side]
      if runs[0]["result"]["framework"] != "jax":
        continue
      flags = runs[0]["command"].split(" bench ", 1)[-1]
      xla = _median_of(runs, "xla_flops_per_step")
      memory = _median_of(runs, "peak_memory_bytes")
      out.append(f"| {r['title']} ({side.upper()}) | `{flags}` | "
                 f"{_median_of(runs, 'model_flops_per_step') / 1e9:.1f} | "
                 f"{'' if xla is None else f'{xla / 1e9:.1f}'} | "
                 f"{_median_of(runs, 'peak_flops') / 1e9:.0f} | {_median_of(runs, 'mfu'):.2f} | "
                 f"{'' if memory is None else f'{memory / 2 ** 20:,.0f}'} | "
                 f"{_median_of(runs, 'compile_s'):.1f} |")
  versions = {r["result"]["framework"]: r["result"].get("version") for r in records}
  out += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + "."]
  return "\n".join(out) + "\n"


def write(runs_path, results_path) -> pathlib.Path:
  lines = pathlib.Path(runs_path).read_text().splitlines()
  path = pathlib.Path(results_path)
  path.write_text(format_results(lines))
  return path


if __name__ == "__main__":
  args = sys.argv[1:]
  print(write(args[0] if args else HERE / "runs.jsonl", args[1] if len(args) > 1 else HERE / "results.md"))
