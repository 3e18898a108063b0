"""Which pairs and gold word alignments a trained model's attention is measured against.

The experiments and `attnjax eval --alignment` read a model's alignment error rate (AER) against
gold links (Och & Ney 2003). en_fr_synth models are measured on `en_fr_synth:quick`'s test split,
whose generator writes the gold; a user's corpus on its own test split, with a Pharaoh file or
the corpus's own gold; the numbers corpus has no gold, and the monotone diagonal stands in for
it, so that the smoke runs exercise the code (their figures mean nothing).
"""

GOLD_CORPUS = "en_fr_synth:quick"
NUMBERS_PAIRS = 4  # the numbers corpus's test pairs measured against the diagonal stand-in


def gold_pairs(data_dir: str = "") -> tuple[list[tuple[str, str]], list[str]]:
  """The test pairs of en_fr_synth:quick and their gold alignments (prepared if needed)."""
  from attnjax import config as config_lib
  from attnjax.data import pipeline
  from attnjax.data.prepare import prepare
  data = config_lib.base().data
  data.name = GOLD_CORPUS
  if data_dir:
    data.data_dir = data_dir
  prepared = prepare(data, progress=False)
  return (pipeline.load_pairs(data, "test", prepared),
          pipeline.load_alignments(data, "test", prepared))


def gold_for(trained, data_dir: str = "", gold_file=None):
  """(pairs, Pharaoh lines) to measure `trained`'s AER on, or (None, why) where there is none.

  en_fr_synth models: en_fr_synth:quick's test pairs and gold. numbers: its first test pairs with
  the diagonal standing in as the gold. Any other corpus: its test pairs, with `gold_file` (a
  Pharaoh line per pair) or the corpus's own gold.
  """
  from attnjax.analysis import alignment
  from attnjax.data import builders, pipeline
  from attnjax.data.prepare import prepare
  data = trained.config.data
  if data.name.startswith("en_fr_synth") and not gold_file:
    return gold_pairs(data_dir)
  prepared = prepare(data, progress=False)
  pairs = pipeline.load_pairs(data, "test", prepared)
  if data.name.startswith("numbers") and not gold_file:
    pairs = pairs[:NUMBERS_PAIRS]
    return pairs, [" ".join(f"{i}-{j}" for i, j in sorted(alignment.diagonal_links(
        len(src.split()), len(ref.split())))) for src, ref in pairs]
  links = builders.read_text(gold_file) if gold_file else pipeline.load_alignments(data, "test", prepared)
  if links is None:
    return None, (f"AER skipped: {data.name} has no gold word alignments; give --gold FILE, a "
                  "Pharaoh line (i-j sure, ipj possible) per test pair")
  return pairs, links


def alignment_errors(trained, pairs, gold) -> dict | None:
  """`Trained.alignment_error`, or None for a model without attention."""
  from attnjax.config import ConfigError
  try:
    return trained.alignment_error(pairs, gold)
  except ConfigError:  # no attention
    return None
