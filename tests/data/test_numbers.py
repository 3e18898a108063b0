"""numbers: word-level tokens, every number once, deterministic disjoint splits."""

import pytest
from num2words import num2words

from attnjax.data import numbers


@pytest.mark.parametrize("number, lang, expected", [
    (97, "en", "ninety seven"),
    (97, "fr", "quatre vingt dix sept"),
    (97, "de", "sieben und neunzig"),
    (1234, "en", "one thousand two hundred and thirty four"),
    (71, "fr", "soixante et onze"),
    (16, "de", "sechzehn"),
    (101, "de", "ein hundert eins"),
])
def test_words(number, lang, expected):
  assert numbers.words(number, lang) == expected


def test_german_words_only_cut_compounds():
  for number in range(0, 10_000, 7):
    assert numbers.words(number, "de").replace(" ", "") == num2words(number, lang="de").lower()


@pytest.mark.parametrize("lang", numbers.LANGUAGES)
def test_every_number_once_in_disjoint_splits(lang):
  splits = numbers.generate(lang, seed=0, max_number=999)
  sources = [en for pairs in splits.values() for en, _ in pairs]
  assert sorted(sources) == sorted(numbers.words(n, "en") for n in range(1000))
  for split, pairs in splits.items():
    assert pairs and all(numbers.split_of(en, seed=0) == split for en, _ in pairs)
  pair = ("ninety seven", numbers.words(97, lang))
  assert sum(pair in pairs for pairs in splits.values()) == 1


def test_generation_is_deterministic():
  assert numbers.generate("de", seed=3, max_number=500) == numbers.generate("de", seed=3, max_number=500)
  assert numbers.generate("de", seed=4, max_number=500) != numbers.generate("de", seed=3, max_number=500)
  assert len(numbers.generate("fr", max_number=500, num_train=10)["train"]) == 10


def test_unknown_language_says_which_exist():
  with pytest.raises(ValueError, match="'fr', 'de'"):
    numbers.generate("es")
