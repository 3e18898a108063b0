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


def round_up(n: int, multiple: int) -> int:
  """The least multiple of `multiple` that is >= n: padded lengths come in few sizes, so a
  jitted function compiles a few times, not once per batch."""
  return -(-n // multiple) * multiple


def pad_rows(rows, num_rows: int, width: int) -> np.ndarray:
  """The id lists `rows` (at most `num_rows`, none longer than `width`) left-aligned in a
  [num_rows, width] int32 array of PAD_ID: the rows of a batch, the unused ones all padding."""
  out = np.full((num_rows, width), PAD_ID, np.int32)
  for row, ids in enumerate(rows):
    out[row, :len(ids)] = ids
  return out
