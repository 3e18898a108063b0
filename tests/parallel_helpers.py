r"""A tiny corpus and config for the parallel tests, also usable as a config file:

    attnjax train --config tests/parallel_helpers.py:root=/tmp/x,strategy=pmap --workdir /tmp/x/run

Every pair is three words, so every batch (train and validation) has one shape and each
run compiles its steps once; dropout is 0, so losses depend only on the arithmetic.
"""

import json
import pathlib
import random

import ml_collections

from attnjax import config as config_lib

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


def tiny_config(root, family: str = "rnn", strategy: str = "mesh", steps: int = 6,
                num_devices: int = 0, fsdp: int = 1) -> ml_collections.ConfigDict:
  root = pathlib.Path(root)
  config = config_lib.base()
  config.data.update(name="files", files_dir=str(root / "corpus"), data_dir=str(root / "data"),
                     vocab_size=48, max_src_len=8, max_tgt_len=8, batch_size=8, prefetch=0)
  if family == "rnn":  # Luong attention; one direction and no input feeding compile fastest
    config.model = config_lib.rnn_model(decoder="luong")
    config.model.update(embed_dim=16, hidden_dim=16, dropout=0.0, bidirectional=False,
                        input_feeding=False)
  else:
    config.model = config_lib.transformer_model("tiny")
    config.model.update(d_model=16, d_ff=32, dropout=0.0, max_len=16)
  config.train.update(num_steps=steps, learning_rate=1e-2, warmup_steps=2, log_every=1,
                      eval_every=1000, eval_samples=0, checkpoint_every=3, keep_checkpoints=10)
  config.decode.max_len = 8
  config.parallel.update(strategy=strategy, num_devices=num_devices, fsdp=fsdp)
  return config


def get_config(arg: str = ""):
  """`root=DIR[,family=rnn|transformer][,strategy=mesh|pmap][,steps=N]`, as a config file."""
  from attnjax.config import preset_options
  kw = preset_options(arg, {"root": "", "family": "rnn", "strategy": "mesh", "steps": "6"},
                      "tests/parallel_helpers.py")
  return tiny_config(kw["root"], kw["family"], kw["strategy"], int(kw["steps"]))


def losses(workdir) -> dict[int, float]:
  """Training loss by step, from the run's metrics.jsonl."""
  rows = [json.loads(line) for line in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()]
  return {r["step"]: r["loss"] for r in rows if "loss" in r}

