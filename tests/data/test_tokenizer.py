"""SentencePiece wrapper: fixed special ids, exact round trips, shared and separate vocabularies."""

import pytest

from attnjax.data.tokenizer import Tokenizer, Tokenizers
from attnjax.tokens import BOS_ID, EOS_ID, PAD_ID, UNK_ID

PAIRS = [
    ("the cat sleeps on the red sofa.", "le chat dort sur le canapé rouge."),
    ("my sister didn't see it!", "ma sœur ne l'a pas vu !"),
    ("will they come tomorrow?", "viendront-ils demain ?"),
    ("the teacher's house is  big", "la maison du professeur est  grande"),
] * 10


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def tokenizers(request):
  return Tokenizers.train(PAIRS, vocab_size=120, model_type=request.param, shared=False)


def test_special_ids_are_fixed(tokenizers):
  tok = tokenizers.src
  assert [tok.id_to_piece(i) for i in (PAD_ID, BOS_ID, EOS_ID, UNK_ID)] == ["<pad>", "<s>", "</s>", "<unk>"]
  ids = tok.encode("the cat")
  assert ids and not {PAD_ID, BOS_ID, EOS_ID} & set(ids)
  assert UNK_ID in tok.encode("zebra ☃")  # unseen characters


@pytest.mark.parametrize("text", ["the cat sleeps on the red sofa.", "the red cat sleeps!",
                                  "  spaces  stay ", "house"])
def test_decode_inverts_encode(tokenizers, text):
  assert tokenizers.src.decode(tokenizers.src.encode(text)) == text


def test_decode_stops_at_eos_and_skips_pad_and_bos(tokenizers):
  tok = tokenizers.tgt
  ids = tok.encode("le chat dort")
  assert tok.decode([BOS_ID] + ids + [EOS_ID] + tok.encode("rouge") + [PAD_ID]) == "le chat dort"
  assert tok.decode([PAD_ID, BOS_ID] + ids + [PAD_ID, PAD_ID]) == "le chat dort"


def test_separate_vocabularies_save_and_load(tokenizers, tmp_path):
  assert not tokenizers.shared
  assert tokenizers.tgt.decode(tokenizers.tgt.encode("ma sœur")) == "ma sœur"
  assert UNK_ID in tokenizers.src.encode("œ")  # French only in the target model
  tokenizers.save(tmp_path)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["src.model", "tgt.model", "tokenizers.json"]
  loaded = Tokenizers.load(tmp_path)
  for side in ("src", "tgt"):
    text = PAIRS[1][side == "tgt"]
    assert getattr(loaded, side).encode(text) == getattr(tokenizers, side).encode(text)
    assert getattr(loaded, side).vocab_size == getattr(tokenizers, side).vocab_size


def test_shared_vocabulary_is_one_model(tmp_path):
  shared = Tokenizers.train(PAIRS, vocab_size=120, shared=True)
  assert shared.shared and shared.src is shared.tgt
  assert UNK_ID not in shared.src.encode("ma sœur")
  shared.save(tmp_path)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.model", "tokenizers.json"]
  assert Tokenizers.load(tmp_path).shared


def test_vocab_larger_than_the_corpus_allows_is_lowered():
  tok = Tokenizer.train(["a b c", "a b"], vocab_size=2000)
  assert 4 < tok.vocab_size < 2000


def test_vocab_smaller_than_the_alphabet_is_a_clear_error():
  with pytest.raises(ValueError, match="data.vocab_size=8 is too small"):
    Tokenizer.train(["abcdefghijklmnopqrstuvwxyz"], vocab_size=8)


def test_loading_a_missing_tokenizer_says_to_prepare(tmp_path):
  with pytest.raises(FileNotFoundError, match="attnjax prepare"):
    Tokenizers.load(tmp_path)
