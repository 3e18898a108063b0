"""`en_fr_synth`, the default corpus: English–French pairs from a seeded grammar, realised by pyrealb.

A sentence is first sampled as a plan that names every choice (`Sentence` → `Clause` →
`NounPhrase`, words from `lexicon`), then realised once per language, so the two sides
say the same thing and differ only where the languages do: post-nominal adjectives
(a red car / une voiture rouge), object pronouns before the verb (the cat ate it / le
chat l' a mangée), ne … pas, passé composé with participle agreement, the passive (was
signed / a été signé), contractions (du, des, au, aux), elision (l', d', qu'), partitives
(bread / du pain), pas de after a negation, subject inversion in questions (a -t-il).

Text conventions, both sides: lower case; tokens separated by one space; punctuation is
a token; a French elided word keeps its apostrophe (l' , qu'); an inverted subject pronoun
keeps its hyphens (a -t-il); the English possessive is a token (the teacher 's house).

    from attnjax.data import synth
    splits = synth.generate("quick", seed=0)  # {'train': [(en, fr), ...], 'validation': ..., 'test': ...}
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import multiprocessing
import os
import random
import re
from collections import Counter
from dataclasses import dataclass

import pyrealb
from pyrealb import A, Adv, D, N, NP, P, PP, Pro, Q, S, SP, V, VP
from tqdm import tqdm

from attnjax.data import lexicon as lex

VERSION = "2"  # bump when the output changes (2: gold word alignments)

SPLITS = ("train", "validation", "test")

# Sizes are in pairs; `max_len` caps the English side in tokens. `test_bins` = (width, end,
# per_bin): a test set balanced over source lengths [0, width), [width, 2 width) ... up to end.
PRESETS: dict[str, dict] = {
    "quick": {"train": 20_000, "validation": 1_000, "test": 1_000, "max_len": 25},
    "long30": {"train": 40_000, "validation": 1_000, "test_bins": (5, 75, 40), "max_len": 30},
    "long50": {"train": 40_000, "validation": 1_000, "test_bins": (5, 75, 40), "max_len": 50},
}

TENSES = {"present": ("p", "p"), "past": ("ps", "pc"), "future": ("f", "f")}  # pyrealb (en, fr)

for _lemma, _info in lex.EN_ADDITIONS.items():
  pyrealb.addToLexicon(_lemma, _info, "en")


# --- plans: one sentence, before it has a language -------------------------------------

@dataclass(frozen=True)
class NounPhrase:
  noun: lex.Noun
  det: str = "the"  # a key of lexicon.DETERMINERS; "a" with a mass noun is a partitive
  plural: bool = False
  adjectives: tuple[lex.Adjective, ...] = ()  # in English order
  modifier: PrepPhrase | None = None
  relative: Relative | None = None
  pronoun: bool = False


@dataclass(frozen=True)
class PrepPhrase:
  prep: lex.Preposition
  np: NounPhrase
  genitive: bool = False  # English "the teacher 's house" for "the house of the teacher"


@dataclass(frozen=True)
class Clause:
  verb: lex.Verb
  subject: NounPhrase | None  # None in an agentless passive or a subject relative
  object: NounPhrase | None = None  # None for an intransitive verb or an object relative
  tense: str = "past"
  adjunct: PrepPhrase | None = None
  adverb: lex.Adverb | None = None
  negative: bool = False
  passive: bool = False
  question: bool = False


@dataclass(frozen=True)
class Relative:
  clause: Clause  # its subject or object is the gap the head noun fills
  gap: str  # 'subject' or 'object'
  zero: bool = False  # English drops "that": the apple the cat ate


@dataclass(frozen=True)
class Sentence:
  clauses: tuple[Clause, ...]
  conjunctions: tuple[tuple[str, str, bool], ...] = ()  # lexicon.CONJUNCTIONS entries


# --- realisation ------------------------------------------------------------------------

def english(sentence: Sentence) -> str:
  """The English side of a plan, tokenised."""
  return _realise(sentence, "en")


def french(sentence: Sentence) -> str:
  """The French side of a plan, tokenised."""
  return _realise(sentence, "fr")


def _realise(sentence: Sentence, lang: str) -> str:
  pyrealb.load(lang)
  i = 0 if lang == "en" else 1
  parts = []
  for clause, conjunction in zip(sentence.clauses, (None, *sentence.conjunctions)):
    if conjunction:
      parts.append(("," if conjunction[2] else "") + " " + conjunction[i])
    parts.append(_clause(clause, lang).realize().rstrip(" .?"))
  text = " ".join(parts) + (" ?" if sentence.clauses[0].question else " .")
  if "[[" in text:
    raise ValueError(f"pyrealb cannot realise this {lang} plan ({text!r}); fix the lexicon entry it marks: {sentence}")
  return _tokenise(text, lang)


def _tokenise(text: str, lang: str) -> str:
  text = re.sub(r"([.,?!;:])", r" \1 ", text.lower())
  if lang == "en":
    text = re.sub(r"(\w)'s\b", r"\1 's", text)
  else:
    text = re.sub(r"\b(l|d|qu|n|s|j|m|t|c|jusqu)'", r"\1' ", text)
    text = re.sub(r"\bque (?=(il|ils|elle|elles|on|un|une)\b)", "qu' ", text)  # parce qu' il
    text = re.sub(r"(\w)-((t-)?(il|elle|ils|elles|on))\b", r"\1 -\2", text)  # a -t-il
  return " ".join(text.split())


def _clause(c: Clause, lang: str):
  parts = [_vp(c, lang)]
  if c.subject:
    parts.insert(0, _role(_np(c.subject, lang), "subject"))
  if c.adverb:  # at the end of the clause in both languages (in the VP, English puts it before the verb)
    parts.append(_key(Adv(c.adverb.en if lang == "en" else c.adverb.fr), c, "adverb"))
  return _typed(S(*parts), neg=c.negative, pas=c.passive, int="yon" if c.question else False)


def _vp(c: Clause, lang: str):
  en = lang == "en"
  parts = [_key(V(c.verb.en if en else c.verb.fr).t(TENSES[c.tense][0 if en else 1]), c, "verb")]
  if c.object:
    parts.append(_role(_np(c.object, lang, negated=c.negative and not c.passive), "object"))
  if c.adjunct:
    parts.append(_pp(c.adjunct, lang))
  return VP(*parts)


def _np(np: NounPhrase, lang: str, negated: bool = False, after_de: bool = False):
  """negated: the object of a negated verb (pas de pain); after_de: governed by "de" (près de beaux arbres)."""
  en = lang == "en"
  noun = _key(N(np.noun.en if en else np.noun.fr).n("p" if np.plural else "s"), np, "noun")
  if not en:
    noun.g(np.noun.gender)
  elif np.noun.sex in ("m", "f"):
    noun.g(np.noun.sex)
  if np.pronoun:
    phrase = NP(D("the" if en else "le"), noun).pro()
    phrase.attnjax_pronoun = (id(np), "noun")  # pronominalised, the terminals are new ones
    return phrase
  if en:
    words = [*(_key(A(a.en), np, f"adjective{i}") for i, a in enumerate(np.adjectives)), noun]
  else:  # pre-nominal adjectives keep their order, post-nominal ones mirror English
    numbered = list(enumerate(np.adjectives))
    pre = [_key(A(a.fr).pos("pre"), np, f"adjective{i}") for i, a in numbered if a.prenominal]
    post = [_key(A(a.fr).pos("post"), np, f"adjective{i}") for i, a in reversed(numbered)
            if not a.prenominal]
    words = [*pre, noun, *post]
  genitive = en and np.modifier is not None and np.modifier.genitive
  mods = [_pp(np.modifier, lang)] if np.modifier and not genitive else []
  if np.relative:
    mods.append(_relative(np.relative, np.noun, lang))
  partitive = np.det == "a" and np.noun.mass
  if genitive:
    owner = _np(np.modifier.np, lang).a("'s")
    owner.attnjax_genitive = (id(np.modifier), "prep")  # 's stands for "of"
    return NP(owner, *words, *mods)
  det = _key(_det(np.det, lang), np, "det")
  if en:
    return NP(*words, *mods) if partitive else NP(det, *words, *mods)
  if np.det == "a" and (negated or (np.plural and pre and not after_de)):  # pas de pain, de grandes maisons
    return NP(_key(D("de"), np, "det"), *words, *mods)
  if partitive:  # du pain, de l'eau
    return PP(_key(P("de"), np, "det"), NP(_key(D("le"), np, "det"), *words, *mods))
  return NP(det, *words, *mods)


def _det(key: str, lang: str):
  lemma, options = lex.DETERMINERS[key][0 if lang == "en" else 1]
  d = D(lemma)
  for option, value in options.items():
    getattr(d, option)(value)
  return d


def _pp(pp: PrepPhrase, lang: str):
  words = (pp.prep.en if lang == "en" else pp.prep.fr).split()
  return PP(*(_key(Q(w), pp, "prep") for w in words[:-1]), _key(P(words[-1]), pp, "prep"),
            _np(pp.np, lang, after_de=words[-1] == "de"))


def _relative(r: Relative, head: lex.Noun, lang: str):
  en = lang == "en"
  vp = _vp(r.clause, lang)
  neg = r.clause.negative
  if r.gap == "subject":
    pronoun = _key(Pro(("who" if head.kind == "P" else "that") if en else "qui"), r, "pronoun")
    return _typed(SP(pronoun, vp), neg=neg)
  if en:  # an S inside, or pyrealb agrees the verb with the head noun (the apples that the cat eat)
    clause = _typed(S(_np(r.clause.subject, lang), vp), neg=neg)
    return SP(clause) if r.zero else SP(_key(Pro("that"), r, "pronoun"), clause)
  return _typed(SP(_key(Pro("que"), r, "pronoun"), _np(r.clause.subject, lang), vp), neg=neg)


def _typed(phrase, **types):
  """phrase.typ() with the types that are set (typ() costs time even when none is)."""
  types = {name: value for name, value in types.items() if value}
  return phrase.typ(types) if types else phrase


def _role(phrase, role: str):
  """Marks a noun phrase as the clause's subject or object (which a pronoun's case tells apart)."""
  phrase.attnjax_role = role
  return phrase


def _key(terminal, part, role: str):
  """Marks `terminal` as the realisation of `role` of the plan part `part` (see `aligned`)."""
  terminal.attnjax_key = (id(part), role)
  return terminal


# --- gold word alignments ---------------------------------------------------------------
#
# Every terminal the realisers above build carries a key naming the part of the plan it
# says (a noun phrase's noun, its determiner, a clause's verb, ...). pyrealb's `real()`
# returns the terminals it realised, in order; the keys of the English and the French
# terminals meet where the two sides say the same part. Terminals that pyrealb makes
# itself (auxiliaries, ne, pas, not, do, by/par, pronouns, a verb rebuilt by the passive
# or a negation) are given the key of the part they belong to by the rules in
# `_assign_keys`.

_LEXICAL, _FUNCTION, _AMBIGUOUS = "lexical", "function", "ambiguous"
_CONTRACTIONS = {"du", "des", "au", "aux"}


def aligned(sentence: Sentence) -> tuple[str, str, str]:
  """(english, french, alignment): the pair, and its gold word alignment in Pharaoh format.

  `i-j` is a sure link between English word i and French word j, `ipj` a possible one (as
  in the alignment test sets of Och & Ney 2003 and awesome-align): possible where a
  correspondence is not one-to-one, such as the auxiliaries of a verb (did not see / n' a
  pas vu: see-vu and not-pas sure, the others possible), a multi-word preposition on both
  sides, or a French determiner with no English word (du pain / bread). A word without a
  counterpart (a zero relative's que) has no link.
  """
  en_tokens, en_keys = _keyed_tokens(sentence, "en")
  fr_tokens, fr_keys = _keyed_tokens(sentence, "fr")
  links = _links(en_tokens, en_keys, fr_tokens, fr_keys)
  text = " ".join(f"{i}{'-' if sure else 'p'}{j}" for (i, j), sure in sorted(links.items()))
  return " ".join(en_tokens), " ".join(fr_tokens), text


def _keyed_tokens(sentence: Sentence, lang: str) -> tuple[list[str], list[dict]]:
  """The tokens `_realise` gives, each with {key: how it realises that key}."""
  pyrealb.load(lang)
  i = 0 if lang == "en" else 1
  raw, spans, genitives = "", [], []  # spans: (start, end, {key: kind}) of the raw text's parts
  for k, (clause, conjunction) in enumerate(zip(sentence.clauses, (None, *sentence.conjunctions))):
    if conjunction:
      if conjunction[2]:
        spans.append((len(raw), len(raw) + 1, {("comma", k): _LEXICAL}))
        raw += ","
      raw += " "
      spans.append((len(raw), len(raw) + len(conjunction[i]), {("conjunction", k): _LEXICAL}))
      raw += conjunction[i]
      raw += " "
    phrase = _clause(clause, lang)
    expected, pronouns, clause_genitives = _expected_keys(phrase)
    genitives += clause_genitives  # the keys of the 's tokens, in order
    terminals = phrase.real()
    text = phrase.detokenize(terminals)
    clause_text = text.rstrip(" .?")
    keys = _assign_keys(terminals, expected, pronouns, ("agent", k), clause.passive, lang)
    cursor = 0
    lowered = clause_text.lower()
    for terminal, terminal_keys in zip(terminals, keys):
      word = terminal.realization.strip().rstrip(" .?").lower()
      start = lowered.find(word, cursor) if word else -1
      if start < 0:
        continue
      spans.append((len(raw) + start, len(raw) + start + len(word), terminal_keys))
      cursor = start + len(word)
    raw += clause_text
  end = "?" if sentence.clauses[0].question else "."
  spans.append((len(raw) + 1, len(raw) + 2, {("end",): _LEXICAL}))
  raw += " " + end
  tokens = _tokenise(raw, lang).split()
  # Tokenising only inserts spaces (and writes que as qu' ), so the tokens, joined, are the
  # raw text's characters without its whitespace, in order.
  owner = [dict() for _ in raw]
  for first, past, keys in spans:
    for c in range(first, past):
      owner[c] = keys
  positions = [c for c, char in enumerate(raw) if not char.isspace()]
  out, cursor = [], 0
  for token in tokens:
    keys: dict = {}
    for c in positions[cursor:cursor + len(token)]:
      for key, kind in owner[c].items():
        keys[key] = _strongest(keys.get(key), kind)
    cursor += len(token)
    if lang == "en" and token == "'s" and genitives:
      keys = {genitives.pop(0): _LEXICAL}
    out.append(keys)
  return tokens, out


def _strongest(a: str | None, b: str) -> str:
  order = (_LEXICAL, _FUNCTION, _AMBIGUOUS)
  return b if a is None else min(a, b, key=order.index)


def _expected_keys(phrase) -> tuple[dict, list, list]:
  """Before realisation: {key: (lemma, constType)} of the keyed terminals, the (key, role)
  of the pronominalised noun phrases and the keys of the genitives, in the order of the tree."""
  expected, pronouns, genitives = {}, [], []

  def walk(node):
    pronoun = getattr(node, "attnjax_pronoun", None)
    if pronoun is not None:
      pronouns.append((pronoun, getattr(node, "attnjax_role", "")))
      return
    if getattr(node, "attnjax_genitive", None) is not None:
      genitives.append(node.attnjax_genitive)
    key = getattr(node, "attnjax_key", None)
    if key is not None:
      expected[key] = (node.lemma, node.constType)
    for child in getattr(node, "elements", ()):
      walk(child)

  walk(phrase)
  return expected, pronouns, genitives


def _assign_keys(terminals, expected: dict, pronouns: list, agent: tuple, passive: bool,
                 lang: str) -> list[dict]:
  """{key: kind} of every realised terminal of one clause.

  Keyed terminals keep their key. Of the others, in this order: one whose lemma is that of
  a verb whose own terminal is gone is that verb (rebuilt by a negation, question or
  passive); a pronoun is the pronominalised noun phrase of its case (the nominative one the
  subject, or the object in a passive; none for the il of a complex inversion); by/par
  with no key is the passive's agent; anything else (auxiliaries, not, ne, pas, do) belongs
  to the next verb (else the previous one), except a pas right after its verb (ne
  rencontrera pas). A French du/des/au/aux also says the
  determiner of the noun phrase after it.
  """
  found = {getattr(t, "attnjax_key", None) for t in terminals}
  missing_verbs = {}
  for key, (lemma, kind) in expected.items():
    if key not in found and kind == "V":
      missing_verbs.setdefault(lemma, []).append(key)
  keys: list[dict] = []
  for t in terminals:
    key = getattr(t, "attnjax_key", None)
    if key is not None:
      keys.append({key: _LEXICAL})
    elif t.isA("V") and t.lemma in missing_verbs:
      candidates = missing_verbs[t.lemma]
      keys.append(dict.fromkeys(candidates, _LEXICAL if len(candidates) == 1 else _AMBIGUOUS))
    elif t.isA("Pro") and _pronoun_of(t, pronouns, passive):
      keys.append({_pronoun_of(t, pronouns, passive): _LEXICAL})
    elif t.isA("P") and t.lemma == ("by" if lang == "en" else "par"):
      keys.append({agent: _LEXICAL})
    else:
      keys.append({})
  verb_keys = [next((k for k in ks if k[1] == "verb"), None) for ks in keys]
  for i, t in enumerate(terminals):
    if not keys[i] and t.realization.strip():
      after = [k for k in verb_keys[i + 1:] if k is not None]
      before = [k for k in verb_keys[:i] if k is not None]
      if t.lemma == "pas" and i and verb_keys[i - 1] is not None:  # ne rencontrera pas
        after = [verb_keys[i - 1]]
      if after or before:
        keys[i] = {(after or before[::-1])[0]: _FUNCTION}
    if lang == "fr" and t.realization.strip().lower() in _CONTRACTIONS:
      following = next((k for ks in keys[i + 1:] for k in ks), None)
      if following is not None and (following[0], "det") in expected:
        keys[i].setdefault((following[0], "det"), _LEXICAL)
  return keys


def _pronoun_of(terminal, pronouns: list, passive: bool):
  """The key of the pronominalised noun phrase that a pronoun terminal says, or None."""
  role = "subject" if (terminal.getProp("c") == "nom") != passive else "object"
  return next((key for key, r in pronouns if r == role), None)


def _links(en_tokens, en_keys, fr_tokens, fr_keys) -> dict[tuple[int, int], bool]:
  """{(i, j): sure} from the tokens' keys (see `aligned`)."""
  by_key: dict = {}
  for side, keyed in ((0, en_keys), (1, fr_keys)):
    for position, keys in enumerate(keyed):
      for key, kind in keys.items():
        by_key.setdefault(key, ([], []))[side].append((position, kind))
  links: dict[tuple[int, int], bool] = {}

  def link(i, j, sure):
    links[(i, j)] = links.get((i, j), False) or sure

  for key, (en, fr) in by_key.items():
    if en and fr:
      verb = key[-1] == "verb"
      one_sided = len(en) == 1 or len(fr) == 1
      for i, en_kind in en:
        for j, fr_kind in fr:
          lexical = en_kind == fr_kind == _LEXICAL
          negation = {en_tokens[i], fr_tokens[j]} == {"not", "pas"}
          link(i, j, (lexical or negation) if verb else lexical and one_sided)
    elif key[-1] == "det":  # a determiner one side only: possible with the other side's noun
      noun = by_key.get((key[0], "noun"), ([], []))
      for i, _ in en or noun[0]:
        for j, _ in fr or noun[1]:
          link(i, j, False)
  return links


# --- sampling ---------------------------------------------------------------------------

_DETERMINERS = ("the", "a", "this", "my", "your", "his", "her", "our", "their")
_DETERMINER_WEIGHTS = (45, 25, 8, 5, 3, 4, 4, 3, 3)
_TENSE_WEIGHTS = {"present": 30, "past": 45, "future": 25}
_CONJUNCTION_WEIGHTS = (35, 20, 20, 10, 10, 5)
_TO = next(p for p in lex.PREPOSITIONS if p.en == "to")
_NP_PREP_HEADS = {"place": "PAFDOVL", "with": "PA", "for": "FDOC", "from": "PAFD", "of": "AOVCIL"}


@functools.cache
def _nouns(kinds: str) -> tuple[lex.Noun, ...]:
  return tuple(n for n in lex.NOUNS if n.kind in kinds)


@functools.cache
def _adjectives(kind: str) -> tuple[lex.Adjective, ...]:
  return tuple(a for a in lex.ADJECTIVES if kind in a.kinds)


@functools.cache
def _verbs(subject: str = "", obj: str = "") -> tuple[lex.Verb, ...]:
  return tuple(v for v in lex.VERBS if subject in v.subjects and obj in v.objects)


def _antecedent(np: NounPhrase | None) -> NounPhrase | None:
  """`np` as a pronoun, when both languages can say it as one (not 'the teacher': he or she?)."""
  if np is None or np.noun.sex == "":
    return None
  return NounPhrase(np.noun, plural=np.plural, pronoun=True)


class Grammar:
  """Samples plans. `richness` in [0, 1] sets how often phrases get modifiers (0: none)."""

  def __init__(self, rng: random.Random, richness: float = 0.5):
    self.rng = rng
    self.richness = richness

  def sentence(self, num_clauses: int) -> Sentence:
    rng = self.rng
    tense = rng.choices(list(_TENSE_WEIGHTS), list(_TENSE_WEIGHTS.values()))[0]
    question = num_clauses == 1 and rng.random() < 0.15
    clauses = [self.clause(tense, question=question)]
    while len(clauses) < num_clauses:
      clauses.append(self.clause(tense, previous=clauses[-1]))
    conjunctions = rng.choices(lex.CONJUNCTIONS, _CONJUNCTION_WEIGHTS, k=num_clauses - 1)
    return Sentence(tuple(clauses), tuple(conjunctions))

  def clause(self, tense: str, previous: Clause | None = None, question: bool = False) -> Clause:
    """A main clause; its pronouns refer to the subject and object of `previous`."""
    rng, r = self.rng, self.richness
    subject = _antecedent(previous.subject) if previous and rng.random() < 0.4 else None
    obj = _antecedent(previous.object) if previous and rng.random() < 0.5 else None
    verbs = _verbs(subject.noun.kind if subject else "", obj.noun.kind if obj else "")
    if not verbs:
      obj, verbs = None, _verbs(subject.noun.kind if subject else "")
    verb = rng.choice(verbs)
    subject = subject or self.noun_phrase(verb.subjects)
    obj = (obj or self.noun_phrase(verb.objects, role="object")) if verb.objects else None
    partitive = obj is not None and obj.det == "a" and obj.noun.mass
    passive = obj is not None and not partitive and rng.random() < 0.15
    if passive and not subject.pronoun and rng.random() < 0.3:
      subject = None
    wants_adjunct = verb.needs_goal or rng.random() < (0.5 if verb.recipient else 0.4 * r)
    adjunct = self.adjunct(verb) if wants_adjunct else None
    adverb = rng.choice([a for a in lex.ADVERBS if tense in a.tenses]) if rng.random() < 0.1 else None
    return Clause(verb, subject, obj, tense, adjunct, adverb,
                  negative=rng.random() < 0.2, passive=passive, question=question)

  def adjunct(self, verb: lex.Verb) -> PrepPhrase:
    rng = self.rng
    if verb.recipient and rng.random() < 0.7:
      return PrepPhrase(_TO, self.noun_phrase("PA", depth=1, role="pp"))
    if verb.needs_goal:
      roles = ("to",)
    elif verb.motion and rng.random() < 0.8:
      roles = ("to", "from")
    else:
      roles = ("place", "with", "for") if verb.objects and "P" in verb.subjects else ("place", "with")
    prep = rng.choice([p for p in lex.PREPOSITIONS if p.role in roles])
    return PrepPhrase(prep, self.noun_phrase(prep.complements, depth=1, role="pp"))

  def np_modifier(self, noun: lex.Noun) -> PrepPhrase:
    """A prepositional phrase after a noun: the cat on the table, the house near the river."""
    rng = self.rng
    roles = [role for role, heads in _NP_PREP_HEADS.items() if noun.kind in heads]
    prep = rng.choice([p for p in lex.PREPOSITIONS if p.role in roles])
    kinds = "L" if noun.kind == "L" and prep.role == "place" else prep.complements  # places are near places
    np = self.noun_phrase(kinds, depth=1, role="pp")
    return PrepPhrase(prep, np, genitive=prep.en == "of" and not np.plural and rng.random() < 0.5)

  def noun_phrase(self, kinds: str, depth: int = 0, role: str = "subject") -> NounPhrase:
    rng, r = self.rng, self.richness
    noun = rng.choice(_nouns(kinds))
    plural = not noun.mass and rng.random() < 0.3
    det = rng.choices(_DETERMINERS, _DETERMINER_WEIGHTS)[0]
    if noun.mass and det == "a" and role != "object":
      det = "the"
    adjectives = self.adjectives(noun)
    modifier = relative = None
    if depth == 0 and rng.random() < 0.35 * r:
      modifier = self.np_modifier(noun)
      det = "the" if modifier.genitive else det
    if depth == 0 and rng.random() < 0.3 * r:
      relative = self.relative(noun)
    return NounPhrase(noun, det, plural, adjectives, modifier, relative)

  def adjectives(self, noun: lex.Noun) -> tuple[lex.Adjective, ...]:
    rng, r = self.rng, self.richness
    chosen: list[lex.Adjective] = []
    for _ in range(2):
      if rng.random() < 0.45 * r:
        choices = [a for a in _adjectives(noun.kind) if all(a.order != c.order for c in chosen)]
        chosen.append(rng.choice(choices))
    return tuple(sorted(chosen, key=lambda a: a.order))

  def relative(self, noun: lex.Noun) -> Relative:
    rng = self.rng
    tense = rng.choices(list(_TENSE_WEIGHTS), list(_TENSE_WEIGHTS.values()))[0]
    negative = rng.random() < 0.1
    if _verbs(subject=noun.kind) and rng.random() < 0.5:
      verb = rng.choice(_verbs(subject=noun.kind))
      obj = self.noun_phrase(verb.objects, depth=1, role="object") if verb.objects else None
      return Relative(Clause(verb, None, obj, tense, negative=negative), "subject")
    verb = rng.choice(_verbs(obj=noun.kind))
    subject = self.noun_phrase(verb.subjects, depth=1)
    return Relative(Clause(verb, subject, None, tense, negative=negative), "object", zero=rng.random() < 0.2)


def sample(rng: random.Random, target_len: int) -> Sentence:
  """A plan whose English side has about `target_len` tokens (a clause has 6 + 6.5 richness)."""
  richness = rng.random()
  return Grammar(rng, richness).sentence(max(1, round(target_len / (6 + 6.5 * richness))))


# --- the corpus -------------------------------------------------------------------------

_TRAINED_MAX_LEN = max(p["max_len"] for p in PRESETS.values())
_CHUNK = 128  # plans realised together; fixed, so that the output does not depend on `workers`
_MAX_BIN_CHUNKS = 400  # gives up on a length bin that stays short (none does with these presets)


def split_of(source: str, seed: int) -> str:
  """'train', 'validation' (5 %) or 'test' (5 %) by a sha256 of the source.

  Sources longer than every preset trains on (50 tokens) are always 'test'.
  """
  if len(source.split()) > _TRAINED_MAX_LEN:
    return "test"
  u = int.from_bytes(hashlib.sha256(f"{seed}\t{source}".encode()).digest()[:8], "big") / 2**64
  return "validation" if u < 0.05 else "test" if u < 0.10 else "train"


def generate(preset: str = "quick", seed: int = 0, num_train: int | None = None,
             progress: bool = False, workers: int | None = None,
             alignments: bool = False) -> dict[str, list[tuple[str, ...]]]:
  """{'train', 'validation', 'test'}: lists of (english, french), identical for identical arguments and VERSION.

  alignments: (english, french, gold alignment) triples instead (see `aligned`); the
  sentences are the same.

  num_train: overrides the preset's training size; validation and test shrink in proportion
  (never below one pair, or one per length bin). workers: processes realising sentences
  (default: one for small jobs, else one per CPU up to 8); the output does not depend on it.
  They are spawned, so a script calling this needs the `if __name__ == "__main__":` guard.
  """
  if preset not in PRESETS:
    raise ValueError(f"unknown en_fr_synth preset {preset!r}; choose one of {sorted(PRESETS)}")
  config = PRESETS[preset]
  max_len = config["max_len"]
  num_train = config["train"] if num_train is None else num_train
  scale = min(1.0, num_train / config["train"])
  sized = {"train": num_train, "validation": max(1, round(config["validation"] * scale))}
  bins: list[tuple[int, int]] = []
  per_bin = 0
  if "test_bins" in config:
    width, end, per_bin = config["test_bins"]
    bins, per_bin = [(lo, lo + width) for lo in range(0, end, width)], max(1, round(per_bin * scale))
  else:
    sized["test"] = max(1, round(config["test"] * scale))
  total = sum(sized.values()) + per_bin * len(bins)
  if workers is None:
    workers = 1 if total < 5_000 else min(8, os.cpu_count() or 1)

  def sized_slot(source: str) -> str | None:
    return split_of(source, seed) if len(source.split()) <= max_len else None

  def bin_slot(source: str) -> int | None:
    n = len(source.split())
    inside = [i for i, (lo, hi) in enumerate(bins) if lo <= n < hi]
    return inside[0] if inside and split_of(source, seed) == "test" else None

  rng = random.Random(f"{preset}:{seed}")
  out: dict[str, list[tuple[str, str]]] = {split: [] for split in SPLITS}
  seen: set[str] = set()
  sized_counts, bin_counts = Counter(), Counter()
  with _realiser(workers) as realise, tqdm(total=total, disable=not progress, desc=f"en_fr_synth {preset}") as bar:
    while any(sized_counts[split] < n for split, n in sized.items()):
      plans = [sample(rng, rng.randint(3, max_len)) for _ in range(_CHUNK)]
      for split, pair in _fill(realise, plans, sized_slot, sized, sized_counts, seen, alignments):
        out[split].append(pair)
        bar.update()
    for _ in range(_MAX_BIN_CHUNKS):
      short = [bins[i] for i in range(len(bins)) if bin_counts[i] < per_bin]
      if not short:
        break
      targets = [rng.randint(max(3, lo), hi - 1) for lo, hi in rng.choices(short, k=_CHUNK)]
      capacity = dict.fromkeys(range(len(bins)), per_bin)
      plans = [sample(rng, t) for t in targets]
      for _, pair in _fill(realise, plans, bin_slot, capacity, bin_counts, seen, alignments):
        out["test"].append(pair)
        bar.update()
  return out


def _fill(realise, plans: list[Sentence], slot_of, capacity: dict, counts: Counter,
          seen: set[str], alignments: bool = False) -> list[tuple[object, tuple[str, ...]]]:
  """Realises `plans` and keeps each new source whose slot (a split, a length bin) has room."""
  kept = []
  for plan, source in zip(plans, realise(english, plans)):
    slot = slot_of(source)
    if slot is not None and counts[slot] < capacity.get(slot, 0) and source not in seen:
      seen.add(source)
      counts[slot] += 1
      kept.append((slot, plan, source))
  if alignments:
    triples = realise(aligned, [plan for _, plan, _ in kept])
    return [(slot, triple) for (slot, _, _), triple in zip(kept, triples)]
  targets = realise(french, [plan for _, plan, _ in kept])
  return [(slot, (source, target)) for (slot, _, source), target in zip(kept, targets)]


@contextlib.contextmanager
def _realiser(workers: int):
  """A map over plans, in `workers` processes (pyrealb is pure Python and single-threaded)."""
  if workers <= 1:
    yield lambda fn, plans: list(map(fn, plans))
    return
  with multiprocessing.get_context("spawn").Pool(workers) as pool:
    yield lambda fn, plans: pool.map(fn, plans, chunksize=16)
