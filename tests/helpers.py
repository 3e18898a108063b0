r"""Tiny configs, corpora and parameters for tests: compilation dominates, so models and data
stay small. Also a config file, for the tests that run `attnjax train` as processes:

    attnjax train --config tests/helpers.py:root=/tmp/x,strategy=pmap --workdir /tmp/x/run
"""

import json
import pathlib
import random

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from attnjax import config as config_lib


def tiny_config(data_dir, family: str = "rnn", decoder: str = "luong", steps: int = 6):
  """A tiny model of `family` on `numbers:fr` (its prepared data in `data_dir`)."""
  config = config_lib.base()
  config.data.name = "numbers:fr"
  config.data.data_dir = str(data_dir)
  config.data.vocab_size = 64
  config.data.max_src_len = 16
  config.data.max_tgt_len = 16
  config.data.batch_size = 8
  config.data.prefetch = 0
  if family == "rnn":
    config.model = config_lib.rnn_model(decoder=decoder)
    config.model.update(embed_dim=16, hidden_dim=16, dropout=0.1)
  else:
    config.model = config_lib.transformer_model("tiny")
    config.model.update(d_model=16, d_ff=32, max_len=64)
  config.train.update(num_steps=steps, learning_rate=1e-2, warmup_steps=2, log_every=2,
                      eval_every=3, eval_samples=8, checkpoint_every=3, keep_checkpoints=10)
  config.decode.max_len = 20
  return config


WORDS = {"the": "le", "red": "rouge", "car": "voiture", "cat": "chat", "sees": "voit",
         "big": "grand", "house": "maison", "dog": "chien", "one": "un", "two": "deux"}


def write_corpus(files_dir) -> pathlib.Path:
  """train/valid/test.{src,tgt}: three English words -> their French words, reversed."""
  files_dir = pathlib.Path(files_dir)
  files_dir.mkdir(parents=True, exist_ok=True)
  rng = random.Random(0)
  for prefix, n in (("train", 160), ("valid", 16), ("test", 16)):
    pairs = [[rng.choice(list(WORDS)) for _ in range(3)] for _ in range(n)]
    (files_dir / f"{prefix}.src").write_text("".join(" ".join(p) + "\n" for p in pairs))
    (files_dir / f"{prefix}.tgt").write_text("".join(" ".join(WORDS[w] for w in reversed(p)) + "\n"
                                                     for p in pairs))
  return files_dir


def parallel_config(root, family: str = "rnn", strategy: str = "mesh", steps: int = 6,
                    num_devices: int = 0, fsdp: int = 1) -> ml_collections.ConfigDict:
  """`tiny_config` for comparing devices, strategies and processes: on `write_corpus(root /
  'corpus')`, where every pair is three words, so every batch (train and validation) has one
  shape and each run compiles its steps once; dropout 0, so losses depend only on the
  arithmetic; no validation."""
  root = pathlib.Path(root)
  config = tiny_config(root / "data", family, steps=steps)
  config.data.update(name="files", files_dir=str(root / "corpus"), vocab_size=48, max_src_len=8,
                     max_tgt_len=8)
  if family == "rnn":  # one direction and no input feeding compile fastest
    config.model.update(dropout=0.0, bidirectional=False, input_feeding=False)
  else:
    config.model.update(dropout=0.0, max_len=16)
  config.train.update(log_every=1, eval_every=1000, eval_samples=0)
  config.decode.max_len = 8
  config.parallel.update(strategy=strategy, num_devices=num_devices, fsdp=fsdp)
  return config


def get_config(arg: str = ""):
  """`root=DIR[,family=rnn|transformer][,strategy=mesh|pmap][,steps=N]`: `parallel_config`."""
  kw = config_lib.preset_options(arg, {"root": "", "family": "rnn", "strategy": "mesh", "steps": "6"},
                                 "tests/helpers.py")
  return parallel_config(kw["root"], kw["family"], kw["strategy"], int(kw["steps"]))


def losses(workdir) -> dict[int, float]:
  """Training loss by step, from the run's metrics.jsonl."""
  rows = [json.loads(line) for line in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()]
  return {r["step"]: r["loss"] for r in rows if "loss" in r}


def random_variables(model, src, tgt_in, seed: int = 0):
  """Normal(0, 0.3) parameters of `model`'s shapes (LayerNorm scales near one), so that tests
  of its properties do not hold only at the initialisation."""
  shapes = jax.eval_shape(model.init, jax.random.key(0), src, tgt_in)
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    x = rng.normal(scale=0.3, size=leaf.shape)
    return jnp.asarray(1.0 + x / 3 if path[-1].key == "scale" else x, leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, shapes)
