"""Every corpus as a TFDS array_record dataset, readable without TensorFlow.

`config.data.name` picks the source:

  en_fr_synth:quick|long30|long50   generated here by attnjax.data.synth
  numbers:fr|numbers:de             generated here by attnjax.data.numbers
  files                             the user's train/valid/test.{src,tgt}[.gz] in `files_dir`
  anything else                     a TFDS catalog name, e.g. wmt14_translate/de-en

The local sources are written by `tfds.core.GeneratorBasedBuilder`s with
`file_format='array_record'`: TFDS's own writer serialises examples with its
numpy feature codecs and writes array_record shards through the array_record
package, so building needs no TensorFlow (checked by tests/data/test_builders.py).
Each dataset lands in `<tfds_dir>/<builder>/<config>/<version>/` (TFDS builds in an
`incomplete.*` folder and renames it when done).

Catalog datasets are only read here. Their TFDS builders mostly need TensorFlow
and a network to build, so build them once on a connected machine:

    pip install tensorflow tensorflow-datasets
    tfds build wmt14_translate/de-en --file_format=array_record --data_dir=$ATTNJAX_DATA_DIR/tfds

then copy `$ATTNJAX_DATA_DIR/tfds` over; `attnjax prepare` reads it with
`tfds.data_source` (TFDS falls back to the dataset_info.json on disk when the
builder's code cannot be imported without TensorFlow).
"""

from __future__ import annotations

import abc
import contextlib
import gzip
import hashlib
import io
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds
from tensorflow_datasets.core.registered import DatasetNotFoundError

from attnjax.errors import Error

SPLITS = ("train", "validation", "test")
FILE_PREFIX = {"train": "train", "validation": "valid", "test": "test"}
SYNTH_PRESETS = ("quick", "long30", "long50")
NUMBERS_LANGS = ("fr", "de")
DEFAULT_MAX_LINE_CHARS = 1000


class _HideCustomConfigWarning(logging.Filter):
  """Every builder here has a configuration made at run time; TFDS warns about each one."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Using custom data configuration")


logging.getLogger("absl").addFilter(_HideCustomConfigWarning())


class DataError(Error, ValueError):
  """A corpus that cannot be used as it is; the message says where and why."""


# ---------------------------------------------------------------- cleaning


def clean_pairs(pairs, max_line_chars: int):
  """Strips both sides; drops empty and overlong pairs and counts them.

  Returns (kept pairs, {'kept': n, 'empty': n, 'overlong': n}).
  """
  kept, empty, overlong = [], 0, 0
  for src, tgt, *extra in pairs:  # extra: a builder's further features, kept as they are
    src, tgt = src.strip(), tgt.strip()
    if not src or not tgt:
      empty += 1
    elif len(src) > max_line_chars or len(tgt) > max_line_chars:
      overlong += 1
    else:
      kept.append((src, tgt, *extra))
  return kept, {"kept": len(kept), "empty": empty, "overlong": overlong}


# ---------------------------------------------------------------- parallel files


def _find(files_dir: Path, name: str) -> Path:
  for path in (files_dir / name, files_dir / f"{name}.gz"):
    if path.is_file():
      return path
  raise DataError(f"{files_dir}: missing {name} (or {name}.gz); "
                  "`files` needs train, valid and test .src/.tgt files")


def _read_lines(path: Path) -> list[str]:
  """The file's lines as text, failing on the first byte that is not UTF-8."""
  opener = gzip.open if path.suffix == ".gz" else open
  lines = []
  with opener(path, "rb") as f:
    for number, raw in enumerate(f, start=1):
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise DataError(f"{path.name} line {number}: not valid UTF-8 "
                        f"(byte 0x{raw[e.start]:02x} at column {e.start + 1})") from None
      lines.append(line.lstrip("\ufeff") if number == 1 else line)
  return lines


def read_text(path) -> list[str]:
  """A plain-text file (optionally .gz) as its lines, without line ends: for `eval --src/--ref`
  and `translate --input`."""
  path = Path(path)
  if not path.is_file():
    raise DataError(f"{path} does not exist")
  return [line.rstrip("\r\n") for line in _read_lines(path)]


def file_pairs(files_dir, split: str) -> list[tuple[str, str]]:
  """The (src, tgt) lines of `<prefix>.src` and `<prefix>.tgt`, as read, unfiltered."""
  files_dir = Path(files_dir)
  prefix = FILE_PREFIX[split]
  src_path, tgt_path = _find(files_dir, f"{prefix}.src"), _find(files_dir, f"{prefix}.tgt")
  src, tgt = _read_lines(src_path), _read_lines(tgt_path)
  if len(src) != len(tgt):
    raise DataError(f"{tgt_path.name}: {len(tgt):,} lines but {src_path.name} has {len(src):,}")
  return list(zip(src, tgt))


def files_fingerprint(files_dir) -> str:
  """Changes when any of the six files is replaced or edited."""
  files_dir = Path(files_dir).resolve()
  parts = [str(files_dir)]
  for split in SPLITS:
    for side in ("src", "tgt"):
      path = _find(files_dir, f"{FILE_PREFIX[split]}.{side}")
      stat = path.stat()
      parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
  return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:10]


# ---------------------------------------------------------------- builders


class _PairsBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Writes {'src': Text, 'tgt': Text, *EXTRA} in generation order; subclasses give the pairs."""

  VERSION = tfds.core.Version("1.0.0")
  EXTRA: tuple[str, ...] = ()  # further Text features, after src and tgt in each raw pair
  # Nothing is downloaded, so there are no checksums to look up; TFDS's lookup
  # imports `importlib_resources`, which it only declares for Python < 3.9
  # (tensorflow/datasets#11212).
  url_infos = None

  def __init__(self, *, config_name: str, version: str = "1.0.0",
               max_line_chars: int = DEFAULT_MAX_LINE_CHARS, **kwargs):
    self._max_line_chars = max_line_chars
    if max_line_chars != DEFAULT_MAX_LINE_CHARS:  # different filtering, different dataset
      config_name += f"-max{max_line_chars}chars"
    config = tfds.core.BuilderConfig(name=config_name, version=version)
    super().__init__(config=config, file_format="array_record", **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict(
            {name: tfds.features.Text() for name in ("src", "tgt", *self.EXTRA)}),
        supervised_keys=("src", "tgt"),
        disable_shuffling=True,  # keep the corpus order: eval and BLEU rely on it
        metadata=tfds.core.MetadataDict(),
    )

  @abc.abstractmethod
  def _raw_pairs(self) -> dict[str, Sequence[tuple[str, str]]]:
    """{split: [(src, tgt), ...]} before cleaning."""

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing is downloaded
    raw = self._raw_pairs()
    generators, filtered = {}, {}
    for split in SPLITS:
      pairs, filtered[split] = clean_pairs(raw[split], self._max_line_chars)
      if not pairs:
        counts = filtered[split]
        raise DataError(f"{self._where(split)} holds no usable sentence pair ({counts['empty']} "
                        f"empty, {counts['overlong']} over {self._max_line_chars} characters)")
      generators[split] = self._generate_examples(pairs)
    self.info.metadata["filtered"] = filtered
    self.info.metadata["max_line_chars"] = self._max_line_chars
    return generators

  def _where(self, split: str) -> str:
    return f"the {split} split of {self.name}"

  def _generate_examples(self, pairs) -> Iterator[tuple[int, dict[str, str]]]:
    for key, pair in enumerate(pairs):
      yield key, dict(zip(("src", "tgt", *self.EXTRA), pair))


def _semver(version: str) -> str:
  """A generator's VERSION ("1", "1.2", "1.2.3") as the X.Y.Z that TFDS needs."""
  if not re.fullmatch(r"\d+(\.\d+){0,2}", str(version)):
    raise DataError(f"generator VERSION {version!r} is not a number like 1, 1.2 or 1.2.3")
  parts = str(version).split(".")
  return ".".join(parts + ["0"] * (3 - len(parts)))


class EnFrSynth(_PairsBuilder, skip_registration=True):
  """English→French sentences from attnjax.data.synth (one config per preset), with their gold word alignments."""

  name = "en_fr_synth"
  EXTRA = ("alignment",)  # Pharaoh links between the words of src and tgt (synth.aligned)

  def __init__(self, *, preset: str, progress: bool = False, **kwargs):
    from attnjax.data import synth
    self._preset, self._progress = preset, progress
    super().__init__(config_name=preset, version=_semver(synth.VERSION), **kwargs)

  def _raw_pairs(self):
    from attnjax.data import synth
    return synth.generate(preset=self._preset, seed=0, progress=self._progress, alignments=True)


class Numbers(_PairsBuilder, skip_registration=True):
  """Numbers written out in words, from attnjax.data.numbers (one config per language)."""

  name = "numbers"

  def __init__(self, *, lang: str, **kwargs):
    from attnjax.data import numbers
    self._lang = lang
    super().__init__(config_name=lang, version=_semver(getattr(numbers, "VERSION", "1.0.0")),
                     **kwargs)

  def _raw_pairs(self):
    from attnjax.data import numbers
    return numbers.generate(lang=self._lang, seed=0)


class ParallelFiles(_PairsBuilder, skip_registration=True):
  """The user's parallel text: train/valid/test.{src,tgt}, one sentence per line."""

  name = "parallel_files"

  def __init__(self, *, files_dir, src_lang: str, tgt_lang: str, **kwargs):
    self._files_dir = Path(files_dir)
    super().__init__(config_name=f"{src_lang}-{tgt_lang}-{files_fingerprint(files_dir)}", **kwargs)

  def _raw_pairs(self):
    return {split: file_pairs(self._files_dir, split) for split in SPLITS}

  def _where(self, split: str) -> str:
    return f"{self._files_dir / FILE_PREFIX[split]}.src/.tgt"


# ---------------------------------------------------------------- one loader


def is_local(name: str) -> bool:
  return name == "files" or name.split(":")[0] in ("en_fr_synth", "numbers")


def make_builder(data_cfg, tfds_dir, progress: bool = False) -> tfds.core.DatasetBuilder:
  """The builder for `data_cfg.name`, writing to / reading from `tfds_dir`."""
  name, tfds_dir = data_cfg.name, str(tfds_dir)
  max_line_chars = data_cfg.get("max_line_chars", DEFAULT_MAX_LINE_CHARS)
  kind, _, arg = name.partition(":")
  if kind == "en_fr_synth":
    if arg not in SYNTH_PRESETS:
      raise DataError(f"unknown preset in data.name={name!r}; use one of "
                      + ", ".join(f"en_fr_synth:{p}" for p in SYNTH_PRESETS))
    return EnFrSynth(preset=arg, progress=progress, data_dir=tfds_dir, max_line_chars=max_line_chars)
  if kind == "numbers":
    if arg not in NUMBERS_LANGS:
      raise DataError(f"unknown language in data.name={name!r}; use numbers:fr or numbers:de")
    return Numbers(lang=arg, data_dir=tfds_dir, max_line_chars=max_line_chars)
  if name == "files":
    if not data_cfg.files_dir:
      raise DataError("data.name='files' needs data.files_dir (a folder with train/valid/test.{src,tgt})")
    return ParallelFiles(files_dir=data_cfg.files_dir, src_lang=data_cfg.src_lang,
                         tgt_lang=data_cfg.tgt_lang, data_dir=tfds_dir,
                         max_line_chars=max_line_chars)
  try:
    return tfds.builder(name, data_dir=tfds_dir)
  except DatasetNotFoundError:
    raise DataError(f"TFDS dataset {name!r} is not in {tfds_dir} and cannot be built here; on a "
                    f"connected machine run `tfds build {name} --file_format=array_record "
                    f"--data_dir={tfds_dir}` (needs tensorflow) and copy the folder") from None


def build(builder: tfds.core.DatasetBuilder, name: str) -> None:
  """Writes the dataset unless TFDS already has it (TFDS renames into place when done)."""
  config = tfds.download.DownloadConfig(try_download_gcs=False)
  if is_local(name):
    # TFDS prints "Downloading and preparing dataset Unknown size ..." for data made here;
    # `prepare` says what it builds instead.
    with contextlib.redirect_stdout(io.StringIO()):
      builder.download_and_prepare(file_format="array_record", download_config=config)
    return
  if builder.is_prepared():  # built elsewhere, maybe in TFDS's default tfrecord format
    if builder.info.file_format.value != "array_record":
      raise DataError(f"{builder.data_dir} holds {builder.info.file_format.value} files; Grain reads "
                      f"array_record: run `tfds convert_format --dataset_version_dir="
                      f"{builder.data_dir} --out_file_format=array_record`")
    return
  try:  # a catalog builder: needs a network and usually tensorflow
    builder.download_and_prepare(file_format="array_record", download_config=config)
  except Exception as e:
    first_line = (str(e).splitlines() or [""])[0]
    raise DataError(f"cannot build TFDS dataset {name!r} here ({type(e).__name__}: {first_line}); "
                    f"on a connected machine run `tfds build {name} --file_format=array_record "
                    f"--data_dir={builder.data_dir_root}` and copy the folder") from None


def check_keys(builder: tfds.core.DatasetBuilder, keys: tuple[str, str], name: str) -> None:
  """Fails unless the dataset has a feature for each of (source, target)."""
  features = getattr(builder.info.features, "keys", lambda: [])()
  missing = [k for k in keys if k not in features]
  if missing:
    raise DataError(f"{name} has no {', '.join(missing)} feature (it has {', '.join(features)}); "
                    "set data.src_lang and data.tgt_lang to two of those")


def pair_keys(data_cfg) -> tuple[str, str]:
  """Feature keys of (source, target): src/tgt for local data, language codes in the catalog."""
  if is_local(data_cfg.name):
    return "src", "tgt"
  return data_cfg.src_lang, data_cfg.tgt_lang


def open_split(builder: tfds.core.DatasetBuilder, split: str) -> Sequence[dict[str, Any]]:
  """Random-access examples of one split (a TFDS ArrayRecordDataSource)."""
  return builder.as_data_source(split=split)


def read_feature(source: Sequence[dict[str, Any]], name: str) -> list[str] | None:
  """Feature `name` of every example of `source` in order, or None when the dataset has none."""
  if not len(source):
    return []
  if name not in source[0]:
    return None
  indices = list(range(len(source)))
  getitems = getattr(source, "__getitems__", None)
  examples = getitems(indices) if getitems is not None else [source[i] for i in indices]
  return [_text(ex[name]) for ex in examples]


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_pairs(source: Sequence[dict[str, Any]], indices, keys: tuple[str, str]
               ) -> list[tuple[str, str]]:
  """The (src, tgt) texts of `indices`, in that order."""
  indices = [int(i) for i in indices]
  getitems = getattr(source, "__getitems__", None)
  examples = getitems(indices) if getitems is not None else [source[i] for i in indices]
  src_key, tgt_key = keys
  return [(_text(ex[src_key]), _text(ex[tgt_key])) for ex in examples]
