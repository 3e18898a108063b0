"""`prepare` builds once, never leaves a half-built folder that looks done, and reads catalog names."""

import logging

import pytest
import tensorflow_datasets as tfds

from attnjax import config as config_lib
from attnjax.data import builders, pipeline, prepare
from attnjax.data.builders import DataError
from attnjax.data.tokenizer import Tokenizers

PAIRS = [("the cat sleeps", "le chat dort"), ("a red car", "une voiture rouge"),
         ("i see the big dog", "je vois le gros chien"), ("", "vide")]


def data_cfg(tmp_path, **overrides):
  cfg = config_lib.base().data
  cfg.update(name="files", data_dir=str(tmp_path / "data"), files_dir=str(tmp_path / "files"),
             vocab_size=60, batch_size=2, prefetch=0)
  cfg.update(overrides)
  files = tmp_path / "files"
  if files.exists():  # rewriting would change the files' fingerprint
    return cfg
  files.mkdir()
  for prefix in ("train", "valid", "test"):
    (files / f"{prefix}.src").write_text("".join(s + "\n" for s, _ in PAIRS))
    (files / f"{prefix}.tgt").write_text("".join(t + "\n" for _, t in PAIRS))
  return cfg


def test_prepare_reports_sizes_lengths_and_dropped_lines(tmp_path):
  data = prepare.prepare(data_cfg(tmp_path), progress=False)
  assert data.split_sizes == {"train": 3, "validation": 3, "test": 3}
  assert data.dropped["train"] == {"kept": 3, "empty": 1, "overlong": 0}
  stats = data.length_stats["train"]["src"]
  assert 0 < stats["min"] <= stats["median"] <= stats["max"]
  src_len, _ = data.lengths("train")
  assert src_len.tolist() == [len(data.tokenizers().src.encode(s)) for s, _ in PAIRS[:3]]
  assert "validation" in data.summary() and data.tokenizer_dir.is_dir()
  assert data.path.parent == tmp_path / "data" / "prepared"
  assert data.dataset_dir.parent.parent.parent == tmp_path / "data" / "tfds"


def test_a_second_prepare_builds_nothing(tmp_path, monkeypatch, caplog):
  cfg = data_cfg(tmp_path)
  first = prepare.prepare(cfg, progress=False)
  monkeypatch.setattr(builders, "build", lambda *a: pytest.fail("built twice"))
  monkeypatch.setattr(Tokenizers, "train", lambda *a, **k: pytest.fail("trained twice"))
  with caplog.at_level(logging.INFO, logger="attnjax.data.prepare"):
    again = prepare.prepare(cfg, progress=False)
  assert again == first
  assert "already prepared" in caplog.text and "nothing to do" in caplog.text
  assert prepare.load_prepared(cfg) == first


def test_a_new_vocabulary_reuses_the_dataset(tmp_path):
  first = prepare.prepare(data_cfg(tmp_path), progress=False)
  second = prepare.prepare(data_cfg(tmp_path, vocab_size=50, tokenizer="bpe"), progress=False)
  assert second.path != first.path and second.dataset_dir == first.dataset_dir


def test_an_interrupted_prepare_is_not_taken_for_done(tmp_path, monkeypatch):
  cfg = data_cfg(tmp_path)
  with pytest.raises(DataError, match="run `attnjax prepare --config ...` first"):
    prepare.load_prepared(cfg)

  def crash(*args, **kwargs):
    raise KeyboardInterrupt

  monkeypatch.setattr(prepare.np, "savez", crash)  # after the tokenizer is written
  with pytest.raises(KeyboardInterrupt):
    prepare.prepare(cfg, progress=False)
  with pytest.raises(DataError, match="is not prepared"):
    prepare.load_prepared(cfg)
  assert not list((tmp_path / "data" / "prepared").iterdir())
  monkeypatch.undo()
  data = prepare.prepare(cfg, progress=False)
  assert prepare.load_prepared(cfg) == data
  assert [p.name for p in data.path.parent.iterdir()] == [data.path.name]  # nothing half-built left


def test_data_dir_defaults_to_the_environment(tmp_path, monkeypatch):
  cfg = data_cfg(tmp_path, data_dir="")
  monkeypatch.setenv("ATTNJAX_DATA_DIR", str(tmp_path / "env"))
  assert prepare.data_root(cfg) == tmp_path / "env"
  monkeypatch.delenv("ATTNJAX_DATA_DIR")
  assert str(prepare.data_root(cfg)).endswith(".cache/attnjax")


def test_catalog_name_prepares_and_batches_under_tfds_mock_data(tmp_path):
  examples = [{"pt": f"olá mundo {i}", "en": f"hello world {i}"} for i in range(6)]
  cfg = data_cfg(tmp_path, name="ted_hrlr_translate/pt_to_en", src_lang="pt", tgt_lang="en")
  with tfds.testing.mock_data(as_data_source_fn=lambda self, split, **kw: examples):
    data = prepare.prepare(cfg, progress=False)
    assert data.keys == ("pt", "en") and data.split_sizes["test"] == 6
    batch = next(pipeline.train_iterator(cfg, prepared=data, num_devices=1, process_index=0,
                                         process_count=1))
    assert data.tokenizers().src.decode(batch["src"][0]).startswith("olá mundo")
    assert pipeline.load_pairs(cfg, "validation")[2] == ("olá mundo 2", "hello world 2")


def test_prepare_off_a_terminal_prints_its_own_line_and_no_bars(tmp_path, capsys):
  prepare.prepare(data_cfg(tmp_path), progress=True)  # pytest's captured stderr is no terminal
  out, err = capsys.readouterr()
  assert "Downloading and preparing" not in out + err  # TFDS's line for a download
  assert "files: building the dataset in" in out
  assert "\r" not in out + err
