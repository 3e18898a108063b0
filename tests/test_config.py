"""Impossible config values are refused with a message that names the field."""

import pytest

from attnjax import config as config_lib
from attnjax import workdir
from attnjax.config import ConfigError


def _default():
  import importlib.util
  import pathlib
  path = pathlib.Path(__file__).parents[1] / "configs" / "default.py"
  spec = importlib.util.spec_from_file_location("default_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


@pytest.mark.parametrize("field,value,message", [
    ("data.batch_size", 0, "data.batch_size=0 must be positive"),
    ("data.vocab_size", 4, "data.vocab_size=4 is too small"),
    ("data.tokenizer", "wordpiece", "data.tokenizer='wordpiece' is not one of unigram, bpe"),
    ("data.pack", True, "data.pack=True packs several pairs into a row, which only the Transformer keeps apart"),
    ("train.num_steps", -1, "train.num_steps=-1 must be positive"),
    ("train.learning_rate", -0.1, "train.learning_rate=-0.1 must be positive"),
    ("train.schedule", "linear", "train.schedule='linear' is not one of rsqrt, cosine, constant"),
    ("train.optimizer", "sgd", "train.optimizer='sgd' is not one of adam, adamw"),
    ("train.label_smoothing", 1.0, "train.label_smoothing=1.0 must be in [0, 1)"),
    ("train.grad_accum_steps", 3, "data.batch_size=64 is not divisible by train.grad_accum_steps=3"),
    ("train.nan_policy", "ignore", "train.nan_policy='ignore' is not one of stop, skip"),
    ("decode.beam_size", 0, "decode.beam_size=0 must be at least 1"),
    ("decode.max_len", 0, "decode.max_len=0 must be at least 1"),
    ("parallel.strategy", "tp", "parallel.strategy='tp' is not one of mesh, pmap"),
    ("parallel.fsdp", 0, "parallel.fsdp=0 must be at least 1"),
    ("model.dtype", "float16", "model.dtype='float16' is not one of float32, bfloat16"),
])
def test_impossible_values_name_the_field(field, value, message):
  config = _default()
  section, key = field.split(".")
  config[section][key] = value
  with pytest.raises(ConfigError) as err:
    config_lib.validate(config)
  assert message in str(err.value)
  assert "\n" not in str(err.value)


def test_default_config_is_valid():
  config_lib.validate(_default())


def test_workdir_refuses_a_config_that_changes_the_model(tmp_path):
  config = _default()
  workdir.save_config(config, tmp_path)
  changed = _default()
  changed.model.hidden_dim = 64
  with pytest.raises(ConfigError, match=r"model.hidden_dim=256 but the config says 64"):
    workdir.check_compatible(changed, workdir.load_config(tmp_path))
  longer = _default()
  longer.train.num_steps = 10_000          # training longer is allowed
  workdir.check_compatible(longer, workdir.load_config(tmp_path))


def test_missing_workdir_config_is_a_clear_error(tmp_path):
  with pytest.raises(ConfigError, match="is not an attnjax workdir"):
    workdir.load_config(tmp_path)
