"""Tests over training seeds: Welch's t, Holm's correction and the words a table prints."""

import random
import statistics

import pytest

from attnjax.analysis import stats


def test_welch_is_symmetric_shift_invariant_and_one_for_identical_samples():
  a, b = [92.69, 93.25, 93.53], [92.34, 92.38, 92.41]
  p = stats.welch(a, b)
  assert 0.0 < p < 1.0 and stats.welch(b, a) == pytest.approx(p)
  assert stats.welch([x + 10 for x in a], [x + 10 for x in b]) == pytest.approx(p)
  assert stats.welch(a, a) == pytest.approx(1.0)


def test_welch_matches_scipys_unequal_variance_t_test():
  from scipy.stats import ttest_ind
  for a, b in (([1.0, 2.0, 4.0, 7.0], [3.0, 5.0, 6.0]), ([92.69, 93.25, 93.53], [88.85, 91.57, 89.65])):
    assert stats.welch(a, b) == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue)


def test_welch_is_undefined_without_spread_or_a_second_seed():
  assert stats.welch([1.0], [2.0, 3.0]) is None
  assert stats.welch([1.0, 1.0], [2.0, 2.0]) is None
  assert stats.welch([1.0, 1.0], [2.0, 3.0]) is not None


def test_welch_rejects_at_its_level_under_the_null():
  """Equal means, unequal spreads (the null Welch's test is for): about alpha of the tests pass."""
  rng = random.Random(0)
  trials = 2000
  rejected = sum(stats.welch([rng.gauss(0, 1) for _ in range(3)], [rng.gauss(0, 2) for _ in range(3)])
                 < stats.ALPHA for _ in range(trials))
  assert rejected / trials < 0.08


def test_holm_adjusts_by_rank_keeps_order_and_skips_undefined():
  assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
  assert stats.holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]
  assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
  assert stats.holm([]) == []


def test_verdict_says_significant_only_when_the_corrected_test_passes():
  assert stats.verdict(0.01, 3) == "significant"
  assert stats.verdict(0.06, 3) == "no difference detected with 3 seeds"
  assert stats.verdict(None, 1).startswith("untested")


def test_compare_corrects_over_the_table():
  """A difference that passes alone (p < 0.05) need not pass among four comparisons."""
  best = [93.0, 93.4, 93.2]
  others = {"close": [92.2, 92.6, 92.3], "far": [80.0, 81.0, 80.5], "same": [93.1, 93.3, 93.2],
            "noisy": [91.0, 94.0, 89.0]}
  result = stats.compare(best, others)
  assert result["far"]["verdict"] == "significant"
  assert result["same"]["verdict"] == "no difference detected with 3 seeds"
  assert all(r["p_holm"] >= r["p"] for r in result.values())
  assert result["far"]["difference"] == pytest.approx(93.2 - 80.5)


def test_mean_ci_covers_the_mean_and_narrows_with_more_seeds():
  mean, half = stats.mean_ci([1.0, 2.0, 3.0])
  assert mean == 2.0 and half == pytest.approx(2.4841, abs=1e-3)  # t(0.975, 2) x 1 / sqrt(3)
  assert stats.mean_ci([5.0]) == (5.0, 0.0)
  assert stats.mean_ci([1.0, 2.0, 3.0] * 3)[1] < half
