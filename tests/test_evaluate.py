"""Scores: sacreBLEU's paired bootstrap as `evaluate.paired_bootstrap` returns it."""

import random

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
