"""`numbers`: numbers written in words, English → French or German, for smoke tests and alignment demos.

    97 → "ninety seven" → "quatre vingt dix sept" (fr) / "sieben und neunzig" (de)

Words come from num2words. Tokens are number words only: lower case, hyphens and commas
dropped (ninety-seven → ninety seven, one thousand, two hundred → one thousand two hundred),
and German compounds cut into their number words (siebenundneunzig → sieben und neunzig),
so that an alignment is word to word and shows the German units-before-tens reordering.

    from attnjax.data import numbers
    splits = numbers.generate("de")  # {'train': [(en, de), ...], 'validation': ..., 'test': ...}
"""

import hashlib
import random
import re

from num2words import num2words

VERSION = "1"  # bump when the output changes

LANGUAGES = ("fr", "de")

_GERMAN_WORDS = sorted(
    """null ein eins eine zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn vierzehn
    fünfzehn sechzehn siebzehn achtzehn neunzehn zwanzig dreißig vierzig fünfzig sechzig siebzig
    achtzig neunzig hundert tausend und million millionen milliarde milliarden""".split(),
    key=len, reverse=True)
_GERMAN = re.compile("|".join(_GERMAN_WORDS))


def words(number: int, lang: str) -> str:
  """`number` in words in `lang` ('en', 'fr' or 'de'), tokenised as described above."""
  text = re.sub(r"[-,]", " ", num2words(number, lang=lang).lower())
  if lang == "de":
    text = " ".join(_split_german(word) for word in text.split())
  return " ".join(text.split())


def _split_german(compound: str) -> str:
  parts = _GERMAN.findall(compound)
  if "".join(parts) != compound:
    raise ValueError(f"cannot cut the German number word {compound!r} into {_GERMAN_WORDS}; add its parts there")
  return " ".join(parts)


def split_of(source: str, seed: int) -> str:
  """'train', 'validation' (10 %) or 'test' (10 %) by a sha256 of the source."""
  u = int.from_bytes(hashlib.sha256(f"{seed}\t{source}".encode()).digest()[:8], "big") / 2**64
  return "validation" if u < 0.1 else "test" if u < 0.2 else "train"


def generate(lang: str = "fr", seed: int = 0, max_number: int = 9999,
             num_train: int | None = None) -> dict[str, list[tuple[str, str]]]:
  """Every number in [0, max_number] once, as (english, target) pairs in shuffled order.

  num_train: keeps only the first `num_train` training pairs (validation and test are whole).
  """
  if lang not in LANGUAGES:
    raise ValueError(f"unknown numbers target language {lang!r}; choose one of {LANGUAGES}")
  order = list(range(max_number + 1))
  random.Random(seed).shuffle(order)
  out: dict[str, list[tuple[str, str]]] = {"train": [], "validation": [], "test": []}
  for number in order:
    source = words(number, "en")
    out[split_of(source, seed)].append((source, words(number, lang)))
  out["train"] = out["train"][:num_train]
  return out
