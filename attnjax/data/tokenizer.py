"""SentencePiece subwords with the project's fixed special ids.

PAD=0, BOS=1, EOS=2, UNK=3 everywhere (`attnjax/tokens.py`). Models are trained from an in-memory
iterator on the training split, with no normalisation and whitespace kept, so
`decode(encode(s)) == s` for any text whose characters were seen in training.
A model is stored as its SentencePiece protobuf (`*.model`) and loaded by parsing
that protobuf; nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import sentencepiece as spm

from attnjax.tokens import BOS_ID, EOS_ID, PAD_ID, UNK_ID

MODEL_TYPES = ("unigram", "bpe")
MAX_TRAINING_SENTENCES = 1_000_000  # SentencePiece samples this many from larger corpora


class Tokenizer:
  """One SentencePiece model: text <-> ids, specials at PAD0/BOS1/EOS2/UNK3."""

  def __init__(self, model_proto: bytes):
    self._proto = model_proto
    self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
    specials = (self._sp.pad_id(), self._sp.bos_id(), self._sp.eos_id(), self._sp.unk_id())
    if specials != (PAD_ID, BOS_ID, EOS_ID, UNK_ID):
      raise ValueError(f"SentencePiece model has pad/bos/eos/unk ids {specials}, "
                       f"attnjax needs {(PAD_ID, BOS_ID, EOS_ID, UNK_ID)}; retrain it with `attnjax prepare`")

  @classmethod
  def train(cls, sentences: Iterable[str], vocab_size: int, model_type: str = "unigram",
            seed: int = 0) -> Tokenizer:
    """Trains on `sentences`; a vocab_size larger than the text supports is lowered, not an error."""
    if model_type not in MODEL_TYPES:
      raise ValueError(f"data.tokenizer={model_type!r}; use one of {MODEL_TYPES}")
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    try:
      spm.SentencePieceTrainer.train(
          sentence_iterator=iter(sentences), model_writer=model,
          model_type=model_type, vocab_size=vocab_size, hard_vocab_limit=False,
          pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, unk_id=UNK_ID,
          normalization_rule_name="identity", remove_extra_whitespaces=False,
          character_coverage=1.0, input_sentence_size=MAX_TRAINING_SENTENCES,
          shuffle_input_sentence=True, num_threads=2, minloglevel=2)
    except RuntimeError as e:
      needed = re.search(r"smaller than required_chars\. \d+ vs (\d+)", str(e))
      if needed:
        raise ValueError(f"data.vocab_size={vocab_size} is too small: the training text has "
                         f"{needed.group(1)} distinct characters and specials; raise it") from None
      raise ValueError(f"SentencePiece training failed: {e}") from None
    return cls(model.getvalue())

  @property
  def vocab_size(self) -> int:
    return self._sp.vocab_size()

  def id_to_piece(self, i: int) -> str:
    return self._sp.id_to_piece(int(i))

  def encode(self, text: str) -> list[int]:
    """Subword ids, without BOS/EOS (the pipeline adds them)."""
    return self._sp.encode(text)

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    return self._sp.encode(list(texts), num_threads=2)

  def decode(self, ids: Sequence[int] | np.ndarray) -> str:
    """Text of `ids` up to the first EOS; PAD and BOS are skipped."""
    out = []
    for i in np.asarray(ids).reshape(-1).tolist():
      if i == EOS_ID:
        break
      if i not in (PAD_ID, BOS_ID):
        out.append(i)
    return self._sp.decode(out)

  def save(self, directory, name: str = "spm") -> Path:
    path = Path(directory) / f"{name}.model"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(self._proto)
    return path

  @classmethod
  def load(cls, directory, name: str = "spm") -> Tokenizer:
    path = Path(directory) / f"{name}.model"
    if not path.is_file():
      raise FileNotFoundError(f"no tokenizer at {path}; run `attnjax prepare --config ...` first")
    return cls(path.read_bytes())


@dataclasses.dataclass(frozen=True)
class Tokenizers:
  """The source and target tokenizers; with a shared vocabulary both are one model."""

  src: Tokenizer
  tgt: Tokenizer

  @property
  def shared(self) -> bool:
    return self.src is self.tgt

  @classmethod
  def train(cls, pairs: Sequence[tuple[str, str]], vocab_size: int, model_type: str = "unigram",
            shared: bool = True, seed: int = 0) -> Tokenizers:
    """Trains on the (src, tgt) pairs of the training split."""
    if shared:
      both = Tokenizer.train((s for pair in pairs for s in pair), vocab_size, model_type, seed)
      return cls(both, both)
    return cls(Tokenizer.train((s for s, _ in pairs), vocab_size, model_type, seed),
               Tokenizer.train((t for _, t in pairs), vocab_size, model_type, seed))

  def save(self, directory) -> None:
    directory = Path(directory)
    if self.shared:
      self.src.save(directory, "shared")
    else:
      self.src.save(directory, "src")
      self.tgt.save(directory, "tgt")
    (directory / "tokenizers.json").write_text(json.dumps({"shared": self.shared}) + "\n")

  @classmethod
  def load(cls, directory) -> Tokenizers:
    directory = Path(directory)
    index = directory / "tokenizers.json"
    if not index.is_file():
      raise FileNotFoundError(f"no tokenizers in {directory}; run `attnjax prepare --config ...` first")
    if json.loads(index.read_text())["shared"]:
      both = Tokenizer.load(directory, "shared")
      return cls(both, both)
    return cls(Tokenizer.load(directory, "src"), Tokenizer.load(directory, "tgt"))
