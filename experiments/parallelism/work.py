"""Time per token, taken apart: (FLOPs per token) / (achieved FLOP/s).

A family can be slower per token because it does more arithmetic per token or because it runs
its arithmetic at a lower rate (less of it in parallel, smaller products, loops). Against the
Transformer at the same n, time ratio = FLOP ratio / rate ratio, exactly; whichever factor is
further from 1 is what makes the difference. Every family's FLOPs here are the project's count
(3x the forward matrix products, `attnjax/models/flops.py`), so the rates compare like with
like; XLA's count, where it sees a loop-free program's whole work, is the count's cross-check.
"""

import math

TRANSFORMER = "transformer"


def counted_flops(row: dict) -> float | None:
  """A training step's FLOPs per target token by the project's count; None where not counted."""
  return 3 * row["model_flops"] / row["target_tokens"] if row.get("model_flops") else None


def split(budget: dict, name: str, length: int) -> dict | None:
  """`name` against the Transformer at n = `length`: each one's time, FLOPs and rate per token
  and the three ratios (name over Transformer); None where either is missing or uncounted."""
  a, t = budget.get(f"{name}/{length}"), budget.get(f"{TRANSFORMER}/{length}")
  if not a or not t or "skipped" in a or "skipped" in t:
    return None
  fa, ft = counted_flops(a), counted_flops(t)
  if fa is None or ft is None:
    return None
  ua, ut = a["us_per_token"], t["us_per_token"]
  ra, rt = fa / ua / 1e3, ft / ut / 1e3  # GFLOP/s: FLOPs per token over µs per token
  out = {"us": ua, "mflops": fa / 1e6, "gflops_s": ra, "time_ratio": ua / ut, "flop_ratio": fa / ft,
         "rate_ratio": ra / rt}
  out["factor"] = ("FLOPs" if abs(math.log(out["flop_ratio"])) >= abs(math.log(out["rate_ratio"]))
                   else "FLOP/s")
  return out


def xla_check(budget: dict, length: int) -> float | None:
  """XLA's training FLOPs per token over the count's, for the Transformer at n (loop-free, so
  XLA's count is whole where the device's work is visible to it); None where not available."""
  t = budget.get(f"{TRANSFORMER}/{length}")
  if not t or "skipped" in t or not t.get("train_flops") or not t.get("xla_counts_all", True):
    return None
  counted = counted_flops(t)
  return t["train_flops"] / t["target_tokens"] / counted if counted else None
