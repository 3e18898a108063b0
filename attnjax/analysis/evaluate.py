"""Scores from sacreBLEU: corpus BLEU and chrF with their signatures, and BLEU by source length.

Hypotheses and references are detokenised text, scored exactly as `sacrebleu` on the
command line scores them, so the numbers here can be checked against the hypothesis file.
"""

import logging

import sacrebleu

# Our corpora separate punctuation by spaces; sacreBLEU would warn on every call that the
# text looks tokenised. Its 13a tokenizer leaves such text as it is, so the scores stand.
logging.getLogger("sacrebleu").setLevel(logging.ERROR)


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict:
  bleu = sacrebleu.metrics.BLEU()
  chrf = sacrebleu.metrics.CHRF()
  b = bleu.corpus_score(hypotheses, [references])
  c = chrf.corpus_score(hypotheses, [references])
  return {"bleu": b.score, "chrf": c.score, "bleu_signature": str(bleu.get_signature()),
          "chrf_signature": str(chrf.get_signature()), "sentences": len(hypotheses)}


def paired_bootstrap(systems: list[tuple[str, list[str]]], references: list[str],
                     samples: int = 1000) -> tuple[str, list[dict]]:
  """sacreBLEU's paired bootstrap resampling (Koehn 2004) of each system against the first.

  systems: (name, hypotheses) pairs, all over the same `references`; the first is the
  baseline. Returns the test's signature and, per system, its BLEU, the bootstrap mean and
  95% confidence half-width, and the p-value of its difference from the baseline (None for
  the baseline itself). The resampling is seeded (sacreBLEU's SACREBLEU_SEED, 12345 unless set).
  A system identical to the baseline gets p = 1 / (samples + 1): sacreBLEU counts only
  resampled differences strictly above the observed one, by design.
  """
  return _paired(systems, references, "bs", samples)


def approximate_randomization(systems: list[tuple[str, list[str]]], references: list[str],
                              trials: int = 10000) -> tuple[str, list[dict]]:
  """sacreBLEU's paired approximate randomization (Riezler and Maxwell 2005) of each system
  against the first: as `paired_bootstrap`, p-values from swapping the two systems'
  sentences at random (no confidence intervals: 'ci' is 0)."""
  return _paired(systems, references, "ar", trials)


def _paired(systems, references, test_type: str, samples: int):
  from sacrebleu.significance import PairedTest
  test = PairedTest(systems, {"BLEU": sacrebleu.metrics.BLEU()}, [references], test_type=test_type,
                    n_samples=samples)
  signatures, results = test()
  rows = [{"system": name, "bleu": r.score, "mean": float(r.mean if r.mean is not None else r.score),
           "ci": float(r.ci or 0.0), "p_value": r.p_value}
          for name, r in zip(results["System"], results["BLEU"])]
  return str(signatures["BLEU"]), rows


def _sentence_stats(hypotheses: list[str], references: list[str]):
  """sacreBLEU's per-sentence n-gram statistics, [sentences, stats]: corpus BLEU is a function
  of their sum, so a bootstrap resample is a sum over drawn rows, not a rescoring of text."""
  import numpy as np
  bleu = sacrebleu.metrics.BLEU()
  return bleu, np.asarray(bleu._extract_corpus_statistics(hypotheses, [references]), dtype=np.int64)


def bleu_interval(hypotheses: list[str], references: list[str], samples: int = 1000,
                  seed: int = 12345, level: float = 0.95) -> tuple[float, float, float]:
  """Corpus BLEU and its percentile bootstrap interval over the sentences (Koehn 2004):
  (bleu, low, high). The interval says how the score would move on another test set drawn
  like this one, e.g. within one source-length bin; it says nothing of another training run."""
  import numpy as np
  bleu, stats = _sentence_stats(hypotheses, references)
  score = lambda rows: bleu._compute_score_from_stats(rows.sum(axis=0).tolist()).score
  draws = np.random.default_rng(seed).integers(0, len(stats), size=(samples, len(stats)))
  scores = np.array([score(stats[d]) for d in draws])
  tail = 100 * (1 - level) / 2
  return score(stats), float(np.percentile(scores, tail)), float(np.percentile(scores, 100 - tail))


def bleu_difference_interval(first: list[str], second: list[str], references: list[str],
                             samples: int = 1000, seed: int = 12345,
                             level: float = 0.95) -> tuple[float, float, float]:
  """BLEU(first) - BLEU(second) over the same references, and its paired percentile bootstrap
  interval (both systems scored on the same resampled sentences): (difference, low, high)."""
  import numpy as np
  bleu, a = _sentence_stats(first, references)
  _, b = _sentence_stats(second, references)
  score = lambda rows: bleu._compute_score_from_stats(rows.sum(axis=0).tolist()).score
  draws = np.random.default_rng(seed).integers(0, len(a), size=(samples, len(a)))
  differences = np.array([score(a[d]) - score(b[d]) for d in draws])
  tail = 100 * (1 - level) / 2
  return (score(a) - score(b), float(np.percentile(differences, tail)),
          float(np.percentile(differences, 100 - tail)))


def length_buckets(sources: list[str], hypotheses: list[str], references: list[str],
                   width: int = 10) -> list[dict]:
  """BLEU per bucket of source length in whitespace tokens: [0, width), [width, 2*width), ..."""
  buckets: dict[int, list[int]] = {}
  for i, src in enumerate(sources):
    buckets.setdefault(len(src.split()) // width, []).append(i)
  rows = []
  for b in sorted(buckets):
    idx = buckets[b]
    score = sacrebleu.metrics.BLEU().corpus_score([hypotheses[i] for i in idx],
                                                   [[references[i] for i in idx]])
    rows.append({"min_len": b * width, "max_len": (b + 1) * width - 1, "sentences": len(idx),
                 "bleu": score.score})
  return rows


def evaluate(translator, pairs: list[tuple[str, str]], bucket_width: int = 10) -> tuple[dict, list[str]]:
  """Translate the sources of `pairs` and score them against the references."""
  sources = [s for s, _ in pairs]
  references = [t for _, t in pairs]
  hypotheses = [t.text for t in translator(sources)]
  report = corpus_scores(hypotheses, references)
  report["by_length"] = length_buckets(sources, hypotheses, references, bucket_width)
  return report, hypotheses


def format_table(report: dict) -> str:
  lines = [f"BLEU  {report['bleu']:6.2f}   {report['bleu_signature']}",
           f"chrF  {report['chrf']:6.2f}   {report['chrf_signature']}",
           f"sentences {report['sentences']}", "", "source length   sentences    BLEU"]
  for row in report.get("by_length", []):
    lines.append(f"{row['min_len']:>5d}-{row['max_len']:<5d}   {row['sentences']:>9d}   {row['bleu']:6.2f}")
  return "\n".join(lines)
