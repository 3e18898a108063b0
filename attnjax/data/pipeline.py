"""Batches for training and evaluation: Grain over the prepared TFDS data.

Training batches come from a plan made with numpy for each epoch from
(seed, epoch) and the subword lengths measured by `prepare`:

  1. drop pairs longer than max_src_len / max_tgt_len (EOS included) or empty; count them;
  2. put each pair in the smallest length bucket that fits both sides; bucket widths
     are a short fixed list of multiples of 8 (`bucket_widths`), so the jitted step
     sees only a handful of shapes; a bucket with fewer pairs than one batch joins
     the next wider one;
  3. shuffle within each bucket, cut into batches (the last one of a bucket wraps
     around to its start, so no pair is skipped), shuffle the batch order.

With `pack=True` pairs are instead packed several to a row of the widest shape,
with segment ids and positions. A `grain.MapDataset` over the epoch's batches reads
each process's contiguous slice of the global batch, tokenises and pads it, and
prefetches on threads. The state is {seed, epoch, batch}: resuming rebuilds the
same plan and continues with exactly the next batch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import grain
import jax
import numpy as np

from attnjax.data import builders
from attnjax.data.prepare import PreparedData, load_prepared
from attnjax.data.tokenizer import Tokenizers
from attnjax.tokens import BOS_ID, EOS_ID, pad_rows, round_up

log = logging.getLogger(__name__)

PAD_MULTIPLE = 8
BUCKET_GROWTH = 1.25
MAX_OPEN_ROWS = 16  # rows a packer keeps open while filling


def _round_up(n: int) -> int:
  return round_up(n, PAD_MULTIPLE)


def bucket_widths(max_len: int) -> list[int]:
  """Pad lengths: multiples of 8 growing ~1.25x up to max_len (64 -> 8 16 24 32 40 56 64)."""
  top = _round_up(max_len)
  widths = [PAD_MULTIPLE]
  while widths[-1] < top:
    widths.append(min(top, _round_up(int(widths[-1] * BUCKET_GROWTH))))
  return widths


@dataclasses.dataclass(frozen=True)
class Sharding:
  """This process's place in the global batch."""

  process_index: int
  process_count: int
  num_devices: int  # devices of this process

  @classmethod
  def resolve(cls, process_index=None, process_count=None, num_devices=None) -> Sharding:
    return cls(jax.process_index() if process_index is None else process_index,
               jax.process_count() if process_count is None else process_count,
               jax.local_device_count() if num_devices is None else num_devices)

  @property
  def unit(self) -> int:
    """Every global batch must be a multiple of this."""
    return self.process_count * self.num_devices

  def check(self, global_batch: int, what: str) -> None:
    if global_batch <= 0 or global_batch % self.unit:
      raise builders.DataError(f"{what}={global_batch} must be a positive multiple of process_count × "
                               f"devices per process = {self.process_count}×{self.num_devices}={self.unit}")

  def local(self, items):
    """This process's contiguous slice of a global batch."""
    n = len(items) // self.process_count
    return items[self.process_index * n:(self.process_index + 1) * n]


# ---------------------------------------------------------------- plans


@dataclasses.dataclass(frozen=True)
class Shape:
  rows: int  # global
  src: int
  tgt: int


class _Plan:
  """Which pairs make up each global batch of an epoch; numpy only, deterministic."""

  def __init__(self, src_len: np.ndarray, tgt_len: np.ndarray, data_cfg, sharding: Sharding):
    # Sequence lengths with EOS (source) or BOS/EOS (target side) added.
    self.src_len, self.tgt_len = src_len.astype(np.int64) + 1, tgt_len.astype(np.int64) + 1
    empty = (src_len == 0) | (tgt_len == 0)
    too_long = ~empty & ((self.src_len > data_cfg.max_src_len) | (self.tgt_len > data_cfg.max_tgt_len))
    self.kept = np.flatnonzero(~empty & ~too_long)
    self.filtered = {"empty": int(empty.sum()), "too_long": int(too_long.sum())}
    if not len(self.kept):
      raise builders.DataError(f"no training pairs fit max_src_len={data_cfg.max_src_len} and "
                               f"max_tgt_len={data_cfg.max_tgt_len}; raise them")
    self.pack = bool(data_cfg.pack)
    src_top, tgt_top = _round_up(data_cfg.max_src_len), _round_up(data_cfg.max_tgt_len)
    widths = bucket_widths(max(data_cfg.max_src_len, data_cfg.max_tgt_len))
    if self.pack:
      widths = widths[-1:]
    self.shapes = []
    for w in widths:
      src_w, tgt_w = min(w, src_top), min(w, tgt_top)
      if data_cfg.tokens_per_batch > 0:
        rows = data_cfg.tokens_per_batch // max(src_w, tgt_w) // sharding.unit * sharding.unit
        if rows == 0:
          raise builders.DataError(f"tokens_per_batch={data_cfg.tokens_per_batch} holds no "
                                   f"{sharding.unit} rows of {max(src_w, tgt_w)} tokens; raise it")
      else:
        rows = data_cfg.batch_size
        sharding.check(rows, "batch_size")
      self.shapes.append(Shape(rows, src_w, tgt_w))
    if not self.pack:
      self.bucket = self._assign_buckets()

  def _assign_buckets(self) -> np.ndarray:
    src_w = np.array([s.src for s in self.shapes])
    tgt_w = np.array([s.tgt for s in self.shapes])
    bucket = np.maximum(np.searchsorted(src_w, self.src_len[self.kept]),
                        np.searchsorted(tgt_w, self.tgt_len[self.kept]))
    for b in range(len(self.shapes) - 1):  # too few for one batch: join the next bucket
      members = bucket == b
      if 0 < members.sum() < self.shapes[b].rows:
        bucket[members] = b + 1
    return bucket

  def epoch(self, seed: int, epoch: int) -> list[tuple[int, Sequence[np.ndarray]]]:
    """The epoch's batches: (shape index, the pair indices of each global row).

    Rows are a [rows, 1] array without packing, a list of arrays with it.
    """
    rng = np.random.default_rng([seed, epoch])
    if self.pack:
      return self._packed(rng)
    batches = []
    for b, shape in enumerate(self.shapes):
      members = rng.permutation(self.kept[self.bucket == b])
      if not len(members):
        continue
      num = -(-len(members) // shape.rows)
      members = np.resize(members, num * shape.rows)  # wrap the last batch around
      batches += [(b, chunk[:, None]) for chunk in members.reshape(num, shape.rows)]
    return [batches[i] for i in rng.permutation(len(batches))]

  def _packed(self, rng) -> list[tuple[int, Sequence[np.ndarray]]]:
    """First-fit packing of the shuffled pairs into rows, a few rows open at a time."""
    shape = self.shapes[0]
    rows, open_rows = [], []  # open row: [pairs, src room, tgt room]
    for i in rng.permutation(self.kept):
      s, t = self.src_len[i], self.tgt_len[i]
      for row in open_rows:
        if row[1] >= s and row[2] >= t:
          row[0].append(i)
          row[1] -= s
          row[2] -= t
          break
      else:
        if len(open_rows) == MAX_OPEN_ROWS:
          rows.append(open_rows.pop(0)[0])
        open_rows.append([[i], shape.src - s, shape.tgt - t])
    rows += [row[0] for row in open_rows]
    num = -(-len(rows) // shape.rows)
    order = np.resize(np.arange(len(rows)), num * shape.rows).reshape(num, shape.rows)
    return [(0, [np.array(rows[r]) for r in chunk]) for chunk in order]

  def stats(self, seed: int) -> dict[str, Any]:
    """Shapes, filtering and the padding fraction of epoch 0."""
    real_src = real_tgt = pad_src = pad_tgt = 0
    batches = self.epoch(seed, 0)
    used = sorted({b for b, _ in batches})
    for b, rows in batches:
      pairs = np.concatenate(rows)
      real_src += self.src_len[pairs].sum()
      real_tgt += self.tgt_len[pairs].sum()
      pad_src += self.shapes[b].rows * self.shapes[b].src
      pad_tgt += self.shapes[b].rows * self.shapes[b].tgt
    return {
        "pairs": len(self.kept), "filtered": self.filtered, "batches_per_epoch": len(batches),
        "shapes": [dataclasses.astuple(self.shapes[b]) for b in used],  # (rows, src, tgt)
        "padding_fraction": {"src": round(float(1 - real_src / pad_src), 4),
                             "tgt": round(float(1 - real_tgt / pad_tgt), 4)},
    }


# ---------------------------------------------------------------- batches


class _Assembler:
  """Reads, tokenises and pads the rows of one batch."""

  def __init__(self, source, keys, tokenizers: Tokenizers):
    self.source, self.keys, self.tokenizers = source, keys, tokenizers

  def encode(self, pairs: np.ndarray):
    texts = builders.read_pairs(self.source, pairs, self.keys)
    return (self.tokenizers.src.encode_batch([s for s, _ in texts]),
            self.tokenizers.tgt.encode_batch([t for _, t in texts]))

  def __call__(self, rows: Sequence[np.ndarray], shape: Shape, pack: bool) -> dict[str, np.ndarray]:
    src_ids, tgt_ids = self.encode(np.concatenate(rows))
    batch = {k: np.zeros((len(rows), shape.src if k.startswith("src") else shape.tgt), np.int32)
             for k in ("src", "tgt_in", "tgt_out")}
    if pack:
      for k in ("src_segmentation", "src_position", "tgt_segmentation", "tgt_position"):
        batch[k] = np.zeros_like(batch["src" if k.startswith("src") else "tgt_in"])
    pair = 0
    for r, members in enumerate(rows):
      s_at = t_at = 0
      for segment in range(1, len(members) + 1):
        src, tgt = src_ids[pair] + [EOS_ID], tgt_ids[pair]
        pair += 1
        s_end, t_end = s_at + len(src), t_at + len(tgt) + 1
        if s_end > shape.src or t_end > shape.tgt:
          raise builders.DataError("a pair is longer than `prepare` measured; the prepared lengths are "
                                   "stale: delete the prepared folder and run `attnjax prepare` again")
        batch["src"][r, s_at:s_end] = src
        batch["tgt_in"][r, t_at:t_end] = [BOS_ID] + tgt
        batch["tgt_out"][r, t_at:t_end] = tgt + [EOS_ID]
        if pack:
          batch["src_segmentation"][r, s_at:s_end] = segment
          batch["tgt_segmentation"][r, t_at:t_end] = segment
          batch["src_position"][r, s_at:s_end] = np.arange(s_end - s_at)
          batch["tgt_position"][r, t_at:t_end] = np.arange(t_end - t_at)
        s_at, t_at = s_end, t_end
    return batch


class TrainIterator:
  """Infinite training batches; `get_state()`/`set_state()` resume on exactly the next batch.

  Each batch is this process's slice of the global batch: dict of int32 numpy
  `src` [B, S] (ids + EOS), `tgt_in` [B, T] (BOS + ids), `tgt_out` [B, T] (ids + EOS),
  0-padded; with packing also `{src,tgt}_segmentation` (1, 2, ... per pair, 0 = pad)
  and `{src,tgt}_position`. `stats` holds the shapes, filtered counts and padding fraction.
  """

  def __init__(self, plan: _Plan, assembler: _Assembler, sharding: Sharding, seed: int,
               prefetch: int):
    self._plan, self._assembler, self._sharding = plan, assembler, sharding
    self._seed, self._prefetch = seed, prefetch
    self.stats = plan.stats(seed)
    self._epoch, self._batch, self._it = 0, 0, None

  def get_state(self) -> dict[str, int]:
    return {"seed": self._seed, "epoch": self._epoch, "batch": self._batch}

  def set_state(self, state: dict[str, int]) -> None:
    if int(state["seed"]) != self._seed:
      raise builders.DataError(f"iterator state is for seed {state['seed']}, this iterator has seed "
                               f"{self._seed}; resume with the config the run started with")
    self._epoch, self._batch, self._it = int(state["epoch"]), int(state["batch"]), None

  def _make_batch(self, entry) -> dict[str, np.ndarray]:
    b, rows = entry
    shape = self._plan.shapes[b]
    local = Shape(shape.rows // self._sharding.process_count, shape.src, shape.tgt)
    return self._assembler(self._sharding.local(rows), local, self._plan.pack)

  def _start_epoch(self) -> None:
    batches = self._plan.epoch(self._seed, self._epoch)
    ds = grain.MapDataset.source(batches)[self._batch:].map(self._make_batch)
    if self._prefetch > 0:
      ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=self._prefetch))
    self._it = iter(ds)

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    while True:
      if self._it is None:
        self._start_epoch()
      try:
        batch = next(self._it)
      except StopIteration:
        self._epoch, self._batch, self._it = self._epoch + 1, 0, None
        continue
      self._batch += 1
      return batch


def train_iterator(data_cfg, *, seed: int = 0, prepared: PreparedData | None = None,
                   split: str = "train", num_devices: int | None = None,
                   process_index: int | None = None, process_count: int | None = None
                   ) -> TrainIterator:
  """Shuffled, bucketed, endlessly repeating batches of `split` for this process."""
  prepared = prepared or load_prepared(data_cfg)
  sharding = Sharding.resolve(process_index, process_count, num_devices)
  plan = _Plan(*prepared.lengths(split), data_cfg, sharding)
  assembler = _Assembler(prepared.source(split), prepared.keys, prepared.tokenizers())
  it = TrainIterator(plan, assembler, sharding, seed, data_cfg.prefetch)
  stats = it.stats
  log.info("%s: %s pairs, dropped %s empty and %s longer than max_src_len/max_tgt_len; "
           "%d batches an epoch of shapes (rows, src, tgt) %s; padding src %.1f%% tgt %.1f%%",
           split, f"{stats['pairs']:,}", f"{stats['filtered']['empty']:,}",
           f"{stats['filtered']['too_long']:,}", stats["batches_per_epoch"], stats["shapes"],
           100 * stats["padding_fraction"]["src"], 100 * stats["padding_fraction"]["tgt"])
  return it


def eval_batches(data_cfg, split: str = "validation", *, batch_size: int | None = None,
                 prepared: PreparedData | None = None, num_devices: int | None = None,
                 process_index: int | None = None, process_count: int | None = None,
                 tokenizers: Tokenizers | None = None) -> Iterator[dict[str, np.ndarray]]:
  """One pass over `split` in corpus order; nothing is dropped.

  Global batches of `batch_size` (default data.batch_size) pairs; the last one is
  padded with empty rows. Each batch adds `weight` float32 [B] (1 real, 0 padding)
  and `index` int32 [B] (position in the split, -1 padding). Pairs longer than
  max_src_len / max_tgt_len are cut to fit (EOS kept last), so widths stay in
  `bucket_widths`. `tokenizers`: read the text with these (a model's own, scoring a corpus
  it was not trained on) instead of the corpus's; the lengths are then measured here.
  """
  prepared = prepared or load_prepared(data_cfg)
  sharding = Sharding.resolve(process_index, process_count, num_devices)
  batch_size = batch_size or data_cfg.batch_size
  sharding.check(batch_size, "eval batch_size")
  assembler = _Assembler(prepared.source(split), prepared.keys, tokenizers or prepared.tokenizers())
  if tokenizers is None:
    src_len, tgt_len = prepared.lengths(split)
  else:
    src_ids, tgt_ids = assembler.encode(np.arange(len(prepared.source(split))))
    src_len, tgt_len = (np.array([len(ids) for ids in side], np.int64) for side in (src_ids, tgt_ids))
  src_len = np.minimum(src_len + 1, data_cfg.max_src_len)
  tgt_len = np.minimum(tgt_len + 1, data_cfg.max_tgt_len)
  widths = bucket_widths(max(data_cfg.max_src_len, data_cfg.max_tgt_len))
  local = batch_size // sharding.process_count
  for start in range(0, len(src_len), batch_size):
    index = sharding.local(np.arange(start, start + batch_size))
    real = index[index < len(src_len)]
    src_w = min(widths[np.searchsorted(widths, src_len[start:start + batch_size].max())],
                _round_up(data_cfg.max_src_len))
    tgt_w = min(widths[np.searchsorted(widths, tgt_len[start:start + batch_size].max())],
                _round_up(data_cfg.max_tgt_len))
    src_ids, tgt_ids = assembler.encode(real) if len(real) else ([], [])
    src_ids = [src[:data_cfg.max_src_len - 1] + [EOS_ID] for src in src_ids]
    tgt_ids = [tgt[:data_cfg.max_tgt_len - 1] for tgt in tgt_ids]
    batch = {"src": pad_rows(src_ids, local, src_w),
             "tgt_in": pad_rows([[BOS_ID] + tgt for tgt in tgt_ids], local, tgt_w),
             "tgt_out": pad_rows([tgt + [EOS_ID] for tgt in tgt_ids], local, tgt_w)}
    batch["weight"] = (np.arange(local) < len(real)).astype(np.float32)
    batch["index"] = np.where(index < len(src_len), index, -1).astype(np.int32)
    yield batch


def load_pairs(data_cfg, split: str = "validation", prepared: PreparedData | None = None
               ) -> list[tuple[str, str]]:
  """Every (source, target) text of `split` in corpus order: the references for BLEU."""
  prepared = prepared or load_prepared(data_cfg)
  source = prepared.source(split)
  return builders.read_pairs(source, range(len(source)), prepared.keys)



def load_alignments(data_cfg, split: str = "test", prepared: PreparedData | None = None
                    ) -> list[str] | None:
  """The gold word alignment (Pharaoh, `synth.aligned`) of every pair of `split` in corpus
  order, or None for a corpus without them (only en_fr_synth has them)."""
  prepared = prepared or load_prepared(data_cfg)
  return builders.read_feature(prepared.source(split), "alignment")
