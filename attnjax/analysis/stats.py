"""Tests over training runs: is variant A better than B, given each one's per-seed figures?

A paired bootstrap over test sentences (`evaluate.paired_bootstrap`) measures how much a score
would move on another test set drawn like this one; it says nothing of how much it moves when the
model is trained again with another seed. The verdict on "A beats B" is therefore a test over
seeds: Welch's t-test on the per-seed figures (unequal variances; Welch 1947), with Holm's
step-down correction over the comparisons of one table (Holm 1979), so that a table of k
comparisons keeps its family-wise error rate at `alpha`.

With 3 seeds a side, only large differences relative to the seeds' spread pass; "no difference
detected with 3 seeds" is then the honest answer, and `verdict` words it so.
"""

import math
import statistics

from scipy import stats as _scipy_stats

ALPHA = 0.05


def welch(a: list[float], b: list[float]) -> float | None:
  """Two-sided p-value of Welch's t-test that `a` and `b` have the same mean.

  None when the test is undefined: fewer than two values on a side, or both sides constant
  (a difference of means with no spread to measure it against).
  """
  a, b = [float(x) for x in a], [float(x) for x in b]
  if len(a) < 2 or len(b) < 2:
    return None
  va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)  # squared standard errors
  if va + vb == 0.0:
    return None
  t = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
  dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))  # Welch-Satterthwaite
  return float(min(1.0, 2.0 * _scipy_stats.t.sf(abs(t), dof)))


def holm(p_values: list[float | None]) -> list[float | None]:
  """Holm's step-down adjusted p-values, in the order given (None stays None, uncounted).

  The i-th smallest of m p-values is multiplied by m - i (i from 0), and the adjusted values are
  made non-decreasing in that order and capped at 1: reject where adjusted p < alpha.
  """
  defined = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
  adjusted: list[float | None] = [None] * len(p_values)
  running = 0.0
  for rank, (p, i) in enumerate(defined):
    running = max(running, min(1.0, (len(defined) - rank) * p))
    adjusted[i] = running
  return adjusted


def verdict(p_adjusted: float | None, seeds: int, alpha: float = ALPHA) -> str:
  """The words a table prints for one comparison: 'significant' only when the test passes."""
  if p_adjusted is None:
    return f"untested ({seeds} seed{'s' if seeds != 1 else ''} or no spread)"
  if p_adjusted < alpha:
    return "significant"
  return f"no difference detected with {seeds} seeds"


def compare(best: list[float], others: dict[str, list[float]], alpha: float = ALPHA) -> dict[str, dict]:
  """Each of `others` against `best` over seeds: mean difference, Welch p, Holm p and verdict.

  The Holm correction runs over all of `others`, the comparisons one table makes.
  """
  names = list(others)
  raw = [welch(best, others[name]) for name in names]
  adjusted = holm(raw)
  result = {}
  for name, p, p_holm in zip(names, raw, adjusted):
    seeds = min(len(best), len(others[name]))
    difference = statistics.mean(best) - statistics.mean(others[name])
    result[name] = {"difference": difference, "p": p, "p_holm": p_holm, "seeds": seeds,
                    "verdict": verdict(p_holm, seeds, alpha)}
  return result


def format_p(p: float | None) -> str:
  """A p-value as the tables print it: four decimals, '–' where the test is undefined."""
  return "–" if p is None else f"{p:.4f}"


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float]:
  """The mean over seeds and the half-width of its t confidence interval (0 for one value)."""
  values = [float(x) for x in values]
  mean = statistics.mean(values)
  if len(values) < 2:
    return mean, 0.0
  t = float(_scipy_stats.t.ppf(0.5 + level / 2, len(values) - 1))
  return mean, t * statistics.stdev(values) / math.sqrt(len(values))
