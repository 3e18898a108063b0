"""The reserved token ids, one set for the tokenizer, the models and decoding, and random
batches of the other ids for benchmarks.

Every SentencePiece model attnjax trains puts PAD, BOS, EOS and UNK at 0-3; ordinary subwords
start at FIRST_WORD_ID.
"""

import numpy as np

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
FIRST_WORD_ID = UNK_ID + 1


def random_batch(batch: int, src_len: int, tgt_len: int, vocab: int, seed: int = 0) -> dict:
  """A teacher-forcing batch of random ordinary ids, no padding: src [batch, src_len], and
  tgt_in (BOS first) and tgt_out [batch, tgt_len], one target sequence shifted by a token."""
  if vocab <= FIRST_WORD_ID:
    raise ValueError(f"a vocabulary of {vocab} has no ids beyond the {FIRST_WORD_ID} reserved ones")
  rng = np.random.default_rng(seed)
  src = rng.integers(FIRST_WORD_ID, vocab, (batch, src_len), dtype=np.int32)
  tgt = rng.integers(FIRST_WORD_ID, vocab, (batch, tgt_len + 1), dtype=np.int32)
  tgt[:, 0] = BOS_ID
  return {"src": src, "tgt_in": tgt[:, :-1], "tgt_out": tgt[:, 1:]}
