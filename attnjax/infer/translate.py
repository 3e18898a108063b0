"""From text to text: tokenise, batch, decode with the model contract, detokenise.

Batches have a fixed number of rows and source lengths rounded up to a multiple of
`LENGTH_QUANTUM`, so a long evaluation compiles the decoder a handful of times, not once
per batch.
"""

import dataclasses
import logging

import jax
import numpy as np

from attnjax.infer import decode as decoding
from attnjax.infer.sampling import Sampling
from attnjax.tokens import EOS_ID, pad_rows, round_up

LENGTH_QUANTUM = 16


@dataclasses.dataclass
class Translation:
  source: str
  text: str
  src_pieces: list          # subword pieces of the source, EOS included
  tgt_pieces: list          # subword pieces of the output, EOS included when emitted
  alignment: np.ndarray | None  # [tgt, layers, heads, src] attention weights, or None
  nbest: list | None = None     # [(text, length-penalised score, log-probability)], best first


class Translator:
  """Decodes sentences with one model and its tokenizers."""

  def __init__(self, model, variables, tokenizers, *, max_src_len: int, max_len: int,
               beam_size: int = 1, alpha: float = 0.6, batch_size: int = 32,
               sampling: Sampling | None = None, nbest: int = 0):
    decoding.check_beam(beam_size)
    self.variables, self.tokenizers = variables, tokenizers
    self.max_src_len, self.batch_size = max_src_len, batch_size
    self._decode = decoding.make_decoder(model, max_len, beam_size, alpha, sampling, nbest)

  def encode_source(self, sentence: str) -> list[int]:
    ids = self.tokenizers.src.encode(sentence)
    if len(ids) + 1 > self.max_src_len:
      logging.warning("source of %d subword tokens truncated to the model's %d: %.60s...",
                      len(ids) + 1, self.max_src_len, sentence)
      ids = ids[: self.max_src_len - 1]
    return ids + [EOS_ID]

  def __call__(self, sentences: list[str]) -> list[Translation]:
    out = []
    for start in range(0, len(sentences), self.batch_size):
      out.extend(self._batch(sentences[start:start + self.batch_size]))
    return out

  def _batch(self, sentences):
    ids = [self.encode_source(s) for s in sentences]
    src = pad_rows(ids, self.batch_size, round_up(max(map(len, ids)), LENGTH_QUANTUM))
    result = self._decode(self.variables, src)
    tokens, lengths = np.asarray(result.tokens), np.asarray(result.lengths)
    align = None if result.alignment is None else np.asarray(result.alignment, np.float32)
    src_vocab, tgt_vocab = self.tokenizers.src, self.tokenizers.tgt
    listed = None if result.nbest is None else jax.device_get(result.nbest)
    translations = []
    for row, sentence in enumerate(sentences):
      out_ids = tokens[row, :lengths[row]].tolist()
      nbest = None if listed is None else [
          (tgt_vocab.decode(listed.tokens[row, n, :listed.lengths[row, n]].tolist()),
           float(listed.scores[row, n]), float(listed.log_probs[row, n]))
          for n in range(listed.tokens.shape[1])]
      translations.append(Translation(
          source=sentence, text=tgt_vocab.decode(out_ids),
          src_pieces=[src_vocab.id_to_piece(i) for i in ids[row]],
          tgt_pieces=[tgt_vocab.id_to_piece(i) for i in out_ids],
          alignment=None if align is None else align[row, :lengths[row], :, :, :len(ids[row])],
          nbest=nbest))
    return translations
