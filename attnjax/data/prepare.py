"""`attnjax prepare`: the corpus as TFDS array_record data, its tokenizer and its lengths.

On disk, under the data dir (`data.data_dir`, else $ATTNJAX_DATA_DIR, else ~/.cache/attnjax):

  tfds/<builder>/<config>/<version>/   the TFDS dataset (array_record shards, dataset_info.json)
  prepared/<slug>/prepared.json        source, split sizes, length statistics, dropped lines
  prepared/<slug>/lengths.npz          <split>_src, <split>_tgt: subword counts, no BOS/EOS
  prepared/<slug>/tokenizer/           shared.model (or src.model + tgt.model), tokenizers.json

The slug names the corpus and the tokenizer settings, so changing the vocabulary
prepares a new folder and reuses the TFDS data. A folder is built as
`<slug>.incomplete-<pid>` and renamed when complete, so a crash never leaves
something that looks prepared. Processes that prepare in one data dir at once (the shards
of an experiment on a cluster) take turns: each waits for `prepare.lock` there, and the
later ones find the corpus prepared.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
import tqdm

from attnjax.data import builders
from attnjax.data.tokenizer import Tokenizers
from attnjax.errors import NO_LOCKS
from attnjax.progress import is_terminal

log = logging.getLogger(__name__)

READ_CHUNK = 10_000  # examples read and tokenised at a time


def data_root(data_cfg) -> Path:
  root = data_cfg.data_dir or os.environ.get("ATTNJAX_DATA_DIR") or "~/.cache/attnjax"
  return Path(root).expanduser()


@dataclasses.dataclass(frozen=True)
class PreparedData:
  """Where a prepared corpus lives and what it holds."""

  path: Path                          # prepared/<slug>
  name: str                           # data.name
  tfds_dir: Path                      # the TFDS data_dir
  dataset_dir: Path                   # tfds/<builder>/<config>/<version>
  keys: tuple[str, str]               # feature keys of (source, target)
  split_sizes: dict[str, int]
  length_stats: dict[str, Any]        # split -> src|tgt -> min/median/p99/max subwords
  dropped: dict[str, Any]             # split -> empty/overlong lines dropped when building

  @property
  def tokenizer_dir(self) -> Path:
    return self.path / "tokenizer"

  def tokenizers(self) -> Tokenizers:
    return Tokenizers.load(self.tokenizer_dir)

  def lengths(self, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Subword counts (no BOS/EOS) of every (source, target) in `split`, in corpus order."""
    with np.load(self.path / "lengths.npz") as npz:
      return npz[f"{split}_src"], npz[f"{split}_tgt"]

  def source(self, split: str):
    """Random-access examples of `split` (TFDS ArrayRecordDataSource)."""
    if builders.is_local(self.name):
      return builders.open_split(tfds.builder_from_directory(self.dataset_dir), split)
    return builders.open_split(tfds.builder(self.name, data_dir=str(self.tfds_dir)), split)

  def summary(self) -> str:
    lines = [f"{self.name}: {self.path}",
             f"  {'split':<11}{'pairs':>10}   src subwords min/median/max   tgt subwords min/median/max"
             "   dropped empty/overlong"]
    for split, size in self.split_sizes.items():
      s, t = self.length_stats[split]["src"], self.length_stats[split]["tgt"]
      d = self.dropped.get(split, {})
      lines.append(f"  {split:<11}{size:>10,}   {s['min']:>6} /{s['median']:>6} /{s['max']:>6}"
                   f"        {t['min']:>6} /{t['median']:>6} /{t['max']:>6}"
                   f"        {d.get('empty', 0):>6,} /{d.get('overlong', 0):>6,}")
    return "\n".join(lines)

  def to_json(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out.update(path=None, tfds_dir=None, dataset_dir=os.path.relpath(self.dataset_dir, self.tfds_dir))
    return out

  @classmethod
  def from_dir(cls, path: Path, tfds_dir: Path) -> PreparedData:
    meta = json.loads((path / "prepared.json").read_text())
    meta.update(path=path, tfds_dir=tfds_dir, dataset_dir=tfds_dir / meta["dataset_dir"],
                keys=tuple(meta["keys"]))
    return cls(**meta)


def _slug(data_cfg, builder, tfds_dir: Path) -> str:
  identity = {
      "dataset": os.path.relpath(str(builder.data_dir), str(tfds_dir)),
      "keys": builders.pair_keys(data_cfg),
      "tokenizer": data_cfg.tokenizer,
      "vocab_size": data_cfg.vocab_size,
      "shared_vocab": data_cfg.shared_vocab,
  }
  digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
  name = re.sub(r"[^A-Za-z0-9]+", "_", data_cfg.name).strip("_")
  vocab = "shared" if data_cfg.shared_vocab else "separate"
  return f"{name}-{data_cfg.tokenizer}{data_cfg.vocab_size}-{vocab}-{digest}"


def _locate(data_cfg, progress: bool = False):
  tfds_dir = data_root(data_cfg) / "tfds"
  builder = builders.make_builder(data_cfg, tfds_dir, progress)
  path = data_root(data_cfg) / "prepared" / _slug(data_cfg, builder, tfds_dir)
  return builder, tfds_dir, path


def load_prepared(data_cfg) -> PreparedData:
  """The prepared corpus of `data_cfg`; a clear error when `prepare` has not run."""
  _, tfds_dir, path = _locate(data_cfg)
  if not (path / "prepared.json").is_file():
    raise builders.DataError(f"{data_cfg.name} is not prepared (no {path}); "
                             "run `attnjax prepare --config ...` first")
  return PreparedData.from_dir(path, tfds_dir)


def _read_split(source, keys, desc: str, progress: bool) -> list[tuple[str, str]]:
  pairs = []
  with tqdm.tqdm(total=len(source), desc=desc, unit=" pairs", disable=not progress) as bar:
    for start in range(0, len(source), READ_CHUNK):
      chunk = range(start, min(start + READ_CHUNK, len(source)))
      pairs.extend(builders.read_pairs(source, chunk, keys))
      bar.update(len(chunk))
  return pairs


def _stats(lengths: np.ndarray) -> dict[str, int]:
  if not len(lengths):
    return {"min": 0, "median": 0, "p99": 0, "max": 0}
  return {"min": int(lengths.min()), "median": int(np.median(lengths)),
          "p99": int(np.percentile(lengths, 99)), "max": int(lengths.max())}


@contextlib.contextmanager
def _turn(root: Path):
  """Wait for this data dir's preparing lock (where the filesystem has locks), hold it inside."""
  root.mkdir(parents=True, exist_ok=True)
  fd = os.open(root / "prepare.lock", os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as err:
      if err.errno not in NO_LOCKS:
        raise
    yield
  finally:
    os.close(fd)


def prepare(data_cfg, progress: bool = True) -> PreparedData:
  """Builds the TFDS dataset, trains the tokenizer and measures lengths; idempotent.

  `progress`: bars on a terminal; elsewhere (a log file) one line when building starts, and
  the caller prints the summary, a line per split.
  """
  bars = progress and is_terminal()
  builder, tfds_dir, path = _locate(data_cfg, bars)
  if (path / "prepared.json").is_file():
    log.info("%s is already prepared in %s; nothing to do", data_cfg.name, path)
    return PreparedData.from_dir(path, tfds_dir)
  with _turn(data_root(data_cfg)):
    if (path / "prepared.json").is_file():  # prepared by the process that went first
      return PreparedData.from_dir(path, tfds_dir)
    return _prepare(data_cfg, progress, bars, builder, tfds_dir, path)


def _prepare(data_cfg, progress: bool, bars: bool, builder, tfds_dir: Path, path: Path) -> PreparedData:
  if not bars:
    tfds.disable_progress_bar()

  log.info("building TFDS dataset %s in %s", data_cfg.name, tfds_dir)
  if progress:
    print(f"{data_cfg.name}: building the dataset in {builder.data_dir}", flush=True)
  builders.build(builder, data_cfg.name)
  keys = builders.pair_keys(data_cfg)
  builders.check_keys(builder, keys, data_cfg.name)

  tmp = path.with_name(f"{path.name}.incomplete-{os.getpid()}")
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    prepared = _prepare_into(tmp, path, tfds_dir, data_cfg, builder, keys, bars)
    (tmp / "prepared.json").write_text(json.dumps(prepared.to_json(), indent=2) + "\n")
    try:
      tmp.rename(path)
    except OSError:
      if not (path / "prepared.json").is_file():
        raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)  # left only by a failure, or a faster twin process
  log.info("prepared %s", prepared.summary())  # the CLI prints it
  return PreparedData.from_dir(path, tfds_dir)


def _prepare_into(tmp: Path, path: Path, tfds_dir: Path, data_cfg, builder, keys,
                  progress: bool) -> PreparedData:
  """Trains the tokenizer on the training split and measures every split, writing into `tmp`."""
  tmp.mkdir(parents=True)
  tokenizers, lengths, sizes, stats = None, {}, {}, {}
  for split in builders.SPLITS:
    pairs = _read_split(builder.as_data_source(split=split), keys, f"{split}: read", progress)
    if tokenizers is None:  # the training split comes first
      log.info("training %s tokenizer (vocab %d) on %d pairs", data_cfg.tokenizer,
               data_cfg.vocab_size, len(pairs))
      tokenizers = Tokenizers.train(pairs, data_cfg.vocab_size, data_cfg.tokenizer,
                                    data_cfg.shared_vocab)
      tokenizers.save(tmp / "tokenizer")
    src_len, tgt_len = [], []
    for start in tqdm.trange(0, len(pairs), READ_CHUNK, desc=f"{split}: measure", disable=not progress):
      chunk = pairs[start:start + READ_CHUNK]
      src_len += map(len, tokenizers.src.encode_batch([s for s, _ in chunk]))
      tgt_len += map(len, tokenizers.tgt.encode_batch([t for _, t in chunk]))
    lengths[f"{split}_src"] = np.asarray(src_len, np.int32)
    lengths[f"{split}_tgt"] = np.asarray(tgt_len, np.int32)
    sizes[split] = len(pairs)
    stats[split] = {"src": _stats(lengths[f"{split}_src"]), "tgt": _stats(lengths[f"{split}_tgt"])}
  np.savez(tmp / "lengths.npz", **lengths)
  metadata = builder.info.metadata or {}
  return PreparedData(path=path, name=data_cfg.name, tfds_dir=tfds_dir,
                      dataset_dir=Path(str(builder.data_dir)), keys=keys, split_sizes=sizes,
                      length_stats=stats, dropped=dict(metadata.get("filtered", {})))
