"""en_fr_synth: hand-checked translations, a lexicon pyrealb can realise, deterministic disjoint splits."""

import hashlib
import json

import pytest

from attnjax.analysis.alignment import parse_pharaoh
from attnjax.data import lexicon, synth
from attnjax.data.synth import Clause, NounPhrase, PrepPhrase, Relative, Sentence

NOUN = {n.en: n for n in lexicon.NOUNS}
ADJ = {a.en: a for a in lexicon.ADJECTIVES}
VERB = {v.en: v for v in lexicon.VERBS}
PREP = {p.en: p for p in lexicon.PREPOSITIONS}
CONJ = {c[0]: c for c in lexicon.CONJUNCTIONS}


def np(noun, **kwargs):
  return NounPhrase(NOUN[noun], **kwargs)


def pair(*clauses, conjunctions=()):
  sentence = Sentence(tuple(clauses), tuple(CONJ[c] for c in conjunctions))
  return synth.english(sentence), synth.french(sentence)


HAND_CHECKED = [
    (  # agreement, post-nominal adjective
        Clause(VERB["see"], np("girl"), np("car", adjectives=(ADJ["red"],)), "past"),
        ("the girl saw the red car .", "la fille a vu la voiture rouge ."),
    ),
    (
        Clause(VERB["see"], np("girl"), np("car", plural=True, adjectives=(ADJ["red"],)), "past"),
        ("the girl saw the red cars .", "la fille a vu les voitures rouges ."),
    ),
    (  # pre-nominal adjective, elision
        Clause(VERB["buy"], np("man"), np("house", det="a", adjectives=(ADJ["big"],)), "present"),
        ("the man buys a big house .", "l' homme achète une grande maison ."),
    ),
    (  # English order, French split and mirrored
        Clause(VERB["sell"], np("woman"), np("car", det="a", adjectives=(ADJ["old"], ADJ["fast"], ADJ["red"])),
               "future"),
        ("the woman will sell an old fast red car .", "la femme vendra une vieille voiture rouge rapide ."),
    ),
    (  # passive
        Clause(VERB["sign"], np("minister"), np("treaty"), "past", passive=True),
        ("the treaty was signed by the minister .", "le traité a été signé par le ministre ."),
    ),
    (  # ne ... pas
        Clause(VERB["eat"], np("cat"), np("apple"), "future", negative=True),
        ("the cat will not eat the apple .", "le chat ne mangera pas la pomme ."),
    ),
    (  # object pronoun before the verb, participle agreement
        Clause(VERB["eat"], np("cat"), np("apple", pronoun=True), "past"),
        ("the cat ate it .", "le chat l' a mangée ."),
    ),
    (  # à le -> au, être and its agreement
        Clause(VERB["go"], np("girl"), tense="past", adjunct=PrepPhrase(PREP["to"], np("market"))),
        ("the girl went to the market .", "la fille est allée au marché ."),
    ),
    (  # de les -> des
        Clause(VERB["sleep"], np("dog"), tense="past", adjunct=PrepPhrase(PREP["near"], np("lake", plural=True))),
        ("the dog slept near the lakes .", "le chien a dormi près des lacs ."),
    ),
    (  # partitive du, and pas de
        Clause(VERB["eat"], np("boy"), np("bread", det="a"), "present"),
        ("the boy eats bread .", "le garçon mange du pain ."),
    ),
    (
        Clause(VERB["drink"], np("boy"), np("water", det="a"), "past", negative=True),
        ("the boy did not drink water .", "le garçon n' a pas bu d' eau ."),
    ),
    (  # English genitive, French de le -> du
        Clause(VERB["sell"], np("king"), np("house", modifier=PrepPhrase(PREP["of"], np("teacher"), genitive=True)),
               "past"),
        ("the king sold the teacher 's house .", "le roi a vendu la maison du professeur ."),
    ),
    (  # question with inversion
        Clause(VERB["eat"], np("cat"), np("apple"), "past", question=True),
        ("did the cat eat the apple ?", "le chat a -t-il mangé la pomme ?"),
    ),
    (  # object relative: que, participle agreement with the head
        Clause(VERB["find"], np("dog"), np("apple", relative=Relative(Clause(VERB["buy"], np("girl"), None, "past"),
                                                                     "object")), "past"),
        ("the dog found the apple that the girl bought .", "le chien a trouvé la pomme que la fille a achetée ."),
    ),
]


@pytest.mark.parametrize("clause, expected", HAND_CHECKED)
def test_hand_checked_pairs(clause, expected):
  assert pair(clause) == expected


def test_conjunction_pronouns_and_elision_of_que():
  first = Clause(VERB["see"], np("girl"), np("car"), "past")
  second = Clause(VERB["buy"], np("girl", pronoun=True), np("car", pronoun=True), "past")
  assert pair(first, second, conjunctions=("because",)) == (
      "the girl saw the car because she bought it .",
      "la fille a vu la voiture parce qu' elle l' a achetée .")


def test_lexicon_has_300_unique_pairs():
  pairs = lexicon.content_pairs()
  assert len(pairs) >= 300
  for entries in (lexicon.NOUNS, lexicon.ADJECTIVES, lexicon.VERBS, lexicon.PREPOSITIONS):
    english = [e.en for e in entries]
    assert len(english) == len(set(english)), "an English word with two translations makes the corpus ambiguous"


@pytest.mark.parametrize("noun", lexicon.NOUNS, ids=lambda n: n.en)
def test_every_noun_realises_with_its_gender_and_plural(noun):
  verb = next(v for v in lexicon.VERBS if noun.kind in v.objects)
  subject = np(next(n.en for n in lexicon.NOUNS if n.kind in verb.subjects))
  _, fr = pair(Clause(verb, subject, NounPhrase(noun, det="this"), "past"))
  assert ("cette" in fr.split()) == (noun.gender == "f"), fr
  if not noun.mass:
    _, fr = pair(Clause(verb, subject, NounPhrase(noun, plural=True), "past"))
    assert not noun.fr_plural or fr.endswith(f" les {noun.fr_plural} ."), fr


@pytest.mark.parametrize("adjective", lexicon.ADJECTIVES, ids=lambda a: a.en)
def test_every_adjective_takes_its_french_position(adjective):
  noun = next((n for n in lexicon.NOUNS if n.kind in adjective.kinds and n.kind != "P" and not n.mass
               and not n.fr_plural), NOUN["girl"])
  _, fr = pair(Clause(VERB["see"], np("cat"), NounPhrase(noun, plural=True, adjectives=(adjective,)), "past"))
  words = fr.split()
  i = words.index(noun.fr + "s")
  assert (words[i - 1] != "les", words[i + 1] != ".") == (adjective.prenominal, not adjective.prenominal), fr


@pytest.mark.parametrize("verb", lexicon.VERBS, ids=lambda v: v.en)
@pytest.mark.parametrize("tense", list(synth.TENSES))
def test_every_verb_conjugates(verb, tense):
  subject = next(n for n in lexicon.NOUNS if n.kind in verb.subjects and n.sex)
  obj = NounPhrase(next(n for n in lexicon.NOUNS if n.kind in verb.objects)) if verb.objects else None
  adjunct = PrepPhrase(PREP["to"], np("market")) if verb.needs_goal else None
  _, fr = pair(Clause(verb, NounPhrase(subject), obj, tense, adjunct, negative=True, passive=obj is not None))
  assert " pas " in fr  # and pair() raises where pyrealb marks a word it cannot realise


# Gold word alignments, checked by hand: (plan, its Pharaoh links).
GOLD = [
    (  # post-nominal adjective; saw = a vu (sure to the participle, possible to the auxiliary)
        Clause(VERB["see"], np("girl"), np("car", adjectives=(ADJ["red"],)), "past"),
        "0-0 1-1 2p2 2-3 3-4 4-6 5-5 6-7"),
    (  # three adjectives, one before the noun and two mirrored after it
        Clause(VERB["sell"], np("woman"), np("car", det="a", adjectives=(ADJ["old"], ADJ["fast"], ADJ["red"])),
               "future"),
        "0-0 1-1 2p2 3-2 4-3 5-4 6-7 7-6 8-5 9-8"),
    (  # passive: was signed = a été signé, by = par
        Clause(VERB["sign"], np("minister"), np("treaty"), "past", passive=True),
        "0-0 1-1 2p2 2p3 2p4 3p2 3p3 3-4 4-5 5-6 6-7 7-8"),
    (  # ne ... pas around a simple future: not = pas sure, ne possible
        Clause(VERB["eat"], np("cat"), np("apple"), "future", negative=True),
        "0-0 1-1 2p2 2p3 2p4 3p2 3p3 3-4 4p2 4-3 4p4 5-5 6-6 7-7"),
    (  # object pronoun before the verb
        Clause(VERB["eat"], np("cat"), np("apple", pronoun=True), "past"),
        "0-0 1-1 2p3 2-4 3-2 4-5"),
    (  # au = à + le: both English words
        Clause(VERB["go"], np("girl"), tense="past", adjunct=PrepPhrase(PREP["to"], np("market"))),
        "0-0 1-1 2p2 2-3 3-4 4-4 5-5 6-6"),
    (  # partitive du: no English word, possible with bread
        Clause(VERB["eat"], np("boy"), np("bread", det="a"), "present"),
        "0-0 1-1 2-2 3p3 3-4 4-5"),
    (  # pas de after a negated passé composé, elided
        Clause(VERB["drink"], np("boy"), np("water", det="a"), "past", negative=True),
        "0-0 1-1 2p2 2p3 2p4 2p5 3p2 3p3 3-4 3p5 4p2 4p3 4p4 4-5 5p6 5-7 6-8"),
    (  # English genitive: 's and the owner's the are du; the possessed noun's la has no English word
        Clause(VERB["sell"], np("king"), np("house", modifier=PrepPhrase(PREP["of"], np("teacher"), genitive=True)),
               "past"),
        "0-0 1-1 2p2 2-3 3-6 4-7 5-6 6p4 6-5 7-8"),
    (  # question: did has no French word of its own, -t-il no English one
        Clause(VERB["eat"], np("cat"), np("apple"), "past", question=True),
        "0p2 0p3 0p4 1-0 2-1 3p2 3p3 3-4 4-5 5-6 6-7"),
    (  # passive of two pronouns: it = elle (subject), her = elle (agent)
        Clause(VERB["eat"], np("girl", pronoun=True), np("apple", pronoun=True), "past", passive=True),
        "0-0 1p1 1p2 1p3 2p1 2p2 2-3 3-4 4-5 5-6"),
    (  # inverted subject pronoun after the verb, object pronoun before it
        Clause(VERB["eat"], np("girl", pronoun=True), np("apple", pronoun=True), "past", question=True),
        "0p1 0p3 1-2 2p1 2-3 3-0 4-4"),
]


@pytest.mark.parametrize("clause, links", GOLD)
def test_gold_alignments_by_hand(clause, links):
  en, fr, alignment = synth.aligned(Sentence((clause,)))
  assert (en, fr) == pair(clause)
  assert alignment == links


def test_gold_alignment_of_two_clauses_and_an_object_relative():
  first = Clause(VERB["see"], np("girl"), np("car"), "past")
  second = Clause(VERB["buy"], np("girl", pronoun=True), np("car", pronoun=True), "past")
  sentence = Sentence((first, second), (CONJ["because"],))
  # the girl saw the car because she bought it . / la fille a vu la voiture parce qu' elle l' a achetée .
  assert synth.aligned(sentence)[2] == "0-0 1-1 2p2 2-3 3-4 4-5 5-6 5-7 6-8 7p10 7-11 8-9 9-12"
  relative = Clause(VERB["find"], np("dog"), np("apple", relative=Relative(
      Clause(VERB["buy"], np("girl"), None, "past"), "object", zero=True)), "past")
  # the dog found the apple the girl bought . / le chien a trouvé la pomme que la fille a achetée .
  assert synth.aligned(Sentence((relative,)))[2] == "0-0 1-1 2p2 2-3 3-4 4-5 5-7 6-8 7p9 7-10 8-11"


def test_parse_pharaoh_reads_sure_and_possible_links():
  sure, possible = parse_pharaoh("0-0 1p2 2-1")
  assert sure == {(0, 0), (2, 1)} and possible == {(0, 0), (1, 2), (2, 1)}
  with pytest.raises(ValueError, match="1:2"):
    parse_pharaoh("0-0 1:2")


def checksum(splits):
  return hashlib.sha256(json.dumps(splits, ensure_ascii=False).encode()).hexdigest()


@pytest.fixture(scope="module")
def quick():
  return synth.generate("quick", seed=1, num_train=300)


def test_alignments_come_with_the_same_sentences_and_link_every_word():
  plain = synth.generate("quick", seed=1, num_train=120)
  with_links = synth.generate("quick", seed=1, num_train=120, alignments=True)
  assert {split: [(en, fr) for en, fr, _ in triples] for split, triples in with_links.items()} == plain
  for triples in with_links.values():
    for en, fr, alignment in triples:
      _, possible = parse_pharaoh(alignment)
      assert {i for i, _ in possible} == set(range(len(en.split()))), (en, fr, alignment)
      unlinked = {w for j, w in enumerate(fr.split()) if j not in {j for _, j in possible}}
      assert unlinked <= {"que", "qu'"}, (en, fr, alignment)  # only a zero relative's


def test_generation_is_deterministic(quick):
  assert checksum(synth.generate("quick", seed=1, num_train=300)) == checksum(quick)
  assert synth.generate("quick", seed=2, num_train=50)["train"] != quick["train"][:50]


def test_workers_do_not_change_the_output():
  one, two = (synth.generate("quick", seed=1, num_train=100, workers=n) for n in (1, 2))
  assert checksum(one) == checksum(two)


def test_splits_are_disjoint_and_follow_split_of(quick):
  assert {split: len(pairs) for split, pairs in quick.items()} == {"train": 300, "validation": 15, "test": 15}
  sources = [en for pairs in quick.values() for en, _ in pairs]
  assert len(sources) == len(set(sources))
  for split, pairs in quick.items():
    assert all(synth.split_of(en, seed=1) == split for en, _ in pairs)


def test_the_phenomena_appear(quick):
  french = " " + " ".join(fr for pairs in quick.values() for _, fr in pairs) + " "
  for needle in (" l' ", " d' ", " qu' ", " n' ", " au ", " du ", " des ", " ne ", " pas ", " a été ", " -t-"):
    assert needle in french, needle


def test_apostrophes_follow_the_token_convention(quick):
  english = {t for pairs in quick.values() for en, _ in pairs for t in en.split() if "'" in t}
  french = {t for pairs in quick.values() for _, fr in pairs for t in fr.split() if "'" in t}
  assert english <= {"'s"}
  assert all(t.endswith("'") for t in french - {"aujourd'hui"}), french


@pytest.mark.parametrize("preset", list(synth.PRESETS))
def test_lengths_follow_the_preset(preset):
  config = synth.PRESETS[preset]
  splits = synth.generate(preset, seed=0, num_train=200)
  lengths = {split: [len(en.split()) for en, _ in pairs] for split, pairs in splits.items()}
  assert max(lengths["train"] + lengths["validation"]) <= config["max_len"]
  assert min(lengths["train"]) < 8
  if "test_bins" in config:
    width, end, _ = config["test_bins"]
    assert sorted(n // width for n in lengths["test"]) == list(range(end // width))  # one per bin at this size
  else:
    assert max(lengths["test"]) <= config["max_len"]


def test_unknown_preset_says_which_exist():
  with pytest.raises(ValueError, match="quick"):
    synth.generate("huge")
