"""Scores: sacreBLEU's paired bootstrap as `evaluate.paired_bootstrap` returns it, and BLEU's
bootstrap intervals over sentences."""

import random

import pytest
import sacrebleu

from attnjax.analysis import evaluate

REFERENCES = [f"le chat {i} a vu la voiture rouge de sa fille ." for i in range(60)]


def _worse(sentences, keep: float, seed: int):
  """Each sentence with every word past the first kept with probability `keep`."""
  rng = random.Random(seed)
  return [" ".join(w for i, w in enumerate(s.split()) if i == 0 or rng.random() < keep) for s in sentences]


def test_a_clearly_worse_system_is_significant_and_a_like_one_is_not():
  good, bad, like = _worse(REFERENCES, 0.95, 0), _worse(REFERENCES, 0.5, 1), _worse(REFERENCES, 0.95, 2)
  signature, rows = evaluate.paired_bootstrap([("good", good), ("bad", bad), ("like", like)],
                                              REFERENCES)
  assert "bs:1000" in signature
  assert [r["system"] for r in rows] == ["good", "bad", "like"]
  assert rows[0]["p_value"] is None  # the baseline
  assert rows[1]["bleu"] < rows[0]["bleu"] - 20 and rows[1]["p_value"] < 0.05
  assert abs(rows[2]["bleu"] - rows[0]["bleu"]) < 5 and rows[2]["p_value"] > 0.05
  assert all(r["ci"] > 0 for r in rows)


def test_bleu_interval_is_sacrebleus_score_inside_its_bootstrap_range():
  refs = ["the cat sat on the mat .", "a dog ran in the park today ."] * 15
  hyps = ["the cat sat on a mat .", "a dog ran in the park ."] * 15
  bleu, low, high = evaluate.bleu_interval(hyps, refs)
  assert bleu == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
  assert low <= bleu <= high and high - low > 0
  assert evaluate.bleu_interval(refs, refs) == (pytest.approx(100.0), pytest.approx(100.0), pytest.approx(100.0))
  assert evaluate.bleu_interval(hyps, refs) == (bleu, low, high)  # seeded


def test_bleu_difference_interval_is_paired_and_antisymmetric():
  refs = ["the cat sat on the mat .", "a dog ran in the park today ."] * 15
  good = list(refs)
  bad = ["the cat sat .", "a dog ran ."] * 15
  difference, low, high = evaluate.bleu_difference_interval(good, bad, refs)
  assert difference == pytest.approx(100.0 - sacrebleu.corpus_bleu(bad, [refs]).score)
  assert 0 < low <= difference <= high
  back = evaluate.bleu_difference_interval(bad, good, refs)
  assert back == (pytest.approx(-difference), pytest.approx(-high), pytest.approx(-low))
  assert evaluate.bleu_difference_interval(bad, bad, refs) == (0.0, 0.0, 0.0)
