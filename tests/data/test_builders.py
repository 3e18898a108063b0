"""Every source becomes an array_record TFDS dataset, read back in corpus order, without TensorFlow."""

import gzip
import sys
import types

import pytest
import tensorflow_datasets as tfds

import attnjax.data
from attnjax import config as config_lib
from attnjax.data import builders
from attnjax.data.builders import DataError

PAIRS = {
    "train": [("the cat sleeps", "le chat dort"), ("a red car", "une voiture rouge"),
              ("i see it", "je le vois")],
    "validation": [("the dog", "le chien"), ("my house", "ma maison")],
    "test": [("his book", "son livre")],
}


def write_files(directory, pairs=PAIRS, gz=()):
  """train/valid/test.{src,tgt}; names in `gz` are written gzipped."""
  directory.mkdir(parents=True, exist_ok=True)
  for split, prefix in builders.FILE_PREFIX.items():
    for side, column in (("src", 0), ("tgt", 1)):
      name = f"{prefix}.{side}"
      data = "".join(p[column] + "\n" for p in pairs[split]).encode()
      if name in gz:
        (directory / f"{name}.gz").write_bytes(gzip.compress(data))
      else:
        (directory / name).write_bytes(data)
  return directory


def data_cfg(tmp_path, name="files", **overrides):
  cfg = config_lib.base().data
  cfg.name = name
  cfg.data_dir = str(tmp_path / "data")
  cfg.files_dir = str(tmp_path / "files")
  cfg.update(overrides)
  return cfg


def build_and_read(cfg):
  builder = builders.make_builder(cfg, f"{cfg.data_dir}/tfds")
  builders.build(builder, cfg.name)
  keys = builders.pair_keys(cfg)
  read = {}
  for split in builders.SPLITS:
    source = builders.open_split(builder, split)
    read[split] = builders.read_pairs(source, range(len(source)), keys)
  return builder, read


def fake_generator(monkeypatch, module: str, version="1"):
  """Stands in for attnjax.data.synth / numbers, recording the arguments it was called with."""
  calls = []
  fake = types.ModuleType(f"attnjax.data.{module}")
  fake.VERSION = version

  def generate(*args, **kwargs):
    calls.append(kwargs)
    if kwargs.get("alignments"):
      return {split: [(*pair, "0-0") for pair in pairs] for split, pairs in PAIRS.items()}
    return {split: list(pairs) for split, pairs in PAIRS.items()}

  fake.generate = generate
  monkeypatch.setitem(sys.modules, f"attnjax.data.{module}", fake)
  monkeypatch.setattr(attnjax.data, module, fake, raising=False)
  return calls


def test_files_round_trip_in_corpus_order_including_gz(tmp_path):
  write_files(tmp_path / "files", gz=("train.tgt", "test.src"))
  builder, read = build_and_read(data_cfg(tmp_path))
  assert read == PAIRS
  assert str(builder.data_dir).endswith("1.0.0")
  assert list(builder.data_path.glob("*.array_record-*"))


def test_building_and_reading_never_import_tensorflow(tmp_path):
  write_files(tmp_path / "files")
  build_and_read(data_cfg(tmp_path))
  assert "tensorflow" not in sys.modules  # TFDS would import it lazily, were it used


def test_mismatched_line_counts_name_both_files(tmp_path):
  files = write_files(tmp_path / "files")
  (files / "valid.tgt").write_text("le chien\n")
  with pytest.raises(DataError, match=r"^valid\.tgt: 1 lines but valid\.src has 2$"):
    build_and_read(data_cfg(tmp_path))


def test_invalid_utf8_names_file_line_and_column(tmp_path):
  files = write_files(tmp_path / "files")
  (files / "train.src").write_bytes(b"the cat sleeps\nab\xffc\ni see it\n")
  with pytest.raises(DataError, match=r"^train\.src line 2: not valid UTF-8 \(byte 0xff at column 3\)$"):
    build_and_read(data_cfg(tmp_path))


def test_missing_file_is_named(tmp_path):
  files = write_files(tmp_path / "files")
  (files / "test.tgt").unlink()
  with pytest.raises(DataError, match="missing test.tgt"):
    build_and_read(data_cfg(tmp_path))


def test_empty_and_overlong_lines_are_dropped_and_counted(tmp_path):
  pairs = dict(PAIRS, train=PAIRS["train"] + [("", "vide"), ("  ", "  "), ("x" * 41, "long"),
                                              ("fine", "y" * 41)])
  write_files(tmp_path / "files", pairs)
  builder, read = build_and_read(data_cfg(tmp_path, max_line_chars=40))
  assert read["train"] == PAIRS["train"]
  assert builder.info.metadata["filtered"]["train"] == {"kept": 3, "empty": 2, "overlong": 2}
  assert builder.info.metadata["filtered"]["test"] == {"kept": 1, "empty": 0, "overlong": 0}
  reloaded = tfds.builder_from_directory(builder.data_dir)  # the counts are stored with the data
  assert reloaded.info.metadata["filtered"]["train"]["overlong"] == 2


def test_synth_and_numbers_builders_use_their_generators(tmp_path, monkeypatch):
  synth_calls = fake_generator(monkeypatch, "synth", version="2")
  numbers_calls = fake_generator(monkeypatch, "numbers")
  builder, read = build_and_read(data_cfg(tmp_path, "en_fr_synth:long30"))
  assert read == PAIRS
  assert synth_calls == [{"preset": "long30", "seed": 0, "progress": False, "alignments": True}]
  assert str(builder.data_dir).endswith("en_fr_synth/long30/2.0.0")
  test = builders.open_split(builder, "test")
  assert builders.read_feature(test, "alignment") == ["0-0"] * len(PAIRS["test"])
  builder, read = build_and_read(data_cfg(tmp_path, "numbers:de"))
  assert read == PAIRS and numbers_calls == [{"lang": "de", "seed": 0}]
  assert builders.read_feature(builders.open_split(builder, "test"), "alignment") is None
  build_and_read(data_cfg(tmp_path, "numbers:de"))
  assert len(numbers_calls) == 1  # built once


@pytest.mark.parametrize("name, message", [("en_fr_synth:huge", "en_fr_synth:quick"),
                                           ("numbers:es", "numbers:fr")])
def test_unknown_local_names_list_the_valid_ones(tmp_path, name, message):
  with pytest.raises(DataError, match=message):
    builders.make_builder(data_cfg(tmp_path, name), tmp_path / "tfds")


def test_catalog_name_via_tfds_mock_data(tmp_path):
  examples = [{"pt": f"olá {i}", "en": f"hello {i}"} for i in range(5)]
  with tfds.testing.mock_data(as_data_source_fn=lambda self, split, **kw: examples):
    cfg = data_cfg(tmp_path, "ted_hrlr_translate/pt_to_en", src_lang="pt", tgt_lang="en")
    builder, read = build_and_read(cfg)
  assert read["validation"] == [(f"olá {i}", f"hello {i}") for i in range(5)]


class Wmt14Standin(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """What `tfds build wmt14_translate/de-en --file_format=array_record` leaves on disk."""

  name = "wmt14_translate"
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="de-en")]
  url_infos = None

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.Translation(["de", "en"]))

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in builders.SPLITS}

  def _generate_examples(self, split):
    for i in range(3):
      yield i, {"de": f"{split} hallo {i}", "en": f"{split} hello {i}"}


def test_catalog_dataset_built_elsewhere_is_read_without_its_code(tmp_path):
  cfg = data_cfg(tmp_path, "wmt14_translate/de-en", src_lang="en", tgt_lang="de")
  with pytest.raises(DataError, match="tfds build wmt14_translate/de-en --file_format=array_record"):
    builders.make_builder(cfg, tmp_path / "data" / "tfds")
  Wmt14Standin(data_dir=tmp_path / "data" / "tfds", file_format="array_record").download_and_prepare()
  _, read = build_and_read(cfg)
  assert sorted(read["test"]) == [(f"test hello {i}", f"test hallo {i}") for i in range(3)]


def test_catalog_languages_must_be_features(tmp_path):
  cfg = data_cfg(tmp_path, "wmt14_translate/de-en", src_lang="en", tgt_lang="fr")
  Wmt14Standin(data_dir=tmp_path / "data" / "tfds", file_format="array_record").download_and_prepare()
  builder = builders.make_builder(cfg, tmp_path / "data" / "tfds")
  with pytest.raises(DataError, match="has no fr feature .* set data.src_lang and data.tgt_lang"):
    builders.check_keys(builder, builders.pair_keys(cfg), cfg.name)


def test_a_catalog_dataset_in_tfrecord_format_says_how_to_convert(tmp_path):
  cfg = data_cfg(tmp_path, "wmt14_translate/de-en", src_lang="en", tgt_lang="de")
  Wmt14Standin(data_dir=tmp_path / "data" / "tfds", file_format="array_record").download_and_prepare()
  info = next((tmp_path / "data" / "tfds").glob("wmt14_translate/de-en/*/dataset_info.json"))
  info.write_text(info.read_text().replace('"array_record"', '"tfrecord"'))  # as `tfds build` writes
  builder = builders.make_builder(cfg, tmp_path / "data" / "tfds")
  with pytest.raises(DataError, match="tfds convert_format --dataset_version_dir=.* "
                                      "--out_file_format=array_record"):
    builders.build(builder, cfg.name)
