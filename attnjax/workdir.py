"""A workdir's config: written when training starts, read by everything that comes after,
and held against the config of a run that continues it; and its lock, which keeps a second
run from writing into it while the first still does.

The checkpoints beside it are `attnjax/checkpoint.py`'s; the model they hold is read by
`attnjax/infer/trained.py`.
"""

import contextlib
import datetime
import fcntl
import json
import os
import pathlib
import socket
import sys

import ml_collections

from attnjax import config as config_lib
from attnjax.errors import NO_LOCKS, WorkdirBusy


# The sections a trained model depends on: a workdir refuses a config that changes them.
FIXED_SECTIONS = ("data", "model")


def save_config(config, workdir) -> pathlib.Path:
  """Write `config` as the workdir's config.json, whole or not at all."""
  path = pathlib.Path(workdir) / "config.json"
  tmp = path.with_suffix(".json.tmp")
  tmp.write_text(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")
  tmp.replace(path)
  return path


def load_config(workdir) -> ml_collections.ConfigDict:
  """The config the workdir was trained with."""
  path = pathlib.Path(workdir) / "config.json"
  if not path.is_file():
    raise config_lib.ConfigError(f"{workdir} is not an attnjax workdir (no config.json); train one "
                                 f"with `attnjax train --config ... --workdir {workdir}`")
  try:
    saved = ml_collections.ConfigDict(json.loads(path.read_text()))
  except json.JSONDecodeError as err:
    raise config_lib.ConfigError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
  model = saved.get("model")
  if model is not None:  # fields added since, at the values the workdir was trained with
    for field, value in config_lib.ADDED_MODEL_FIELDS.get(model.get("family"), {}).items():
      if field not in model:
        model[field] = value
  return saved


def check_compatible(config, saved) -> None:
  """Refuse to continue a workdir whose data or model section differs from `config`'s."""
  for section in FIXED_SECTIONS:
    new, old = json.loads(config[section].to_json()), saved[section].to_dict()
    for key in sorted(set(new) | set(old)):
      if new.get(key) != old.get(key):
        raise config_lib.ConfigError(
            f"the workdir was trained with {section}.{key}={old.get(key)!r} but the config says "
            f"{new.get(key)!r}; use a new --workdir or the original config")


# ---------------------------------------------------------------- the lock

LOCK_FILE = "workdir.lock"


def holder(workdir) -> str:
  """Who holds (or last held) the workdir's lock, as the holder wrote it."""
  try:
    info = json.loads((pathlib.Path(workdir) / LOCK_FILE).read_text())
    return f"{info['command']} on host {info['host']}, pid {info['pid']}, since {info['since']}"
  except (OSError, ValueError, KeyError, TypeError):
    return "another process"


@contextlib.contextmanager
def lock(workdir, command: str = "attnjax train"):
  """Hold the workdir for this process, or raise WorkdirBusy naming the one that does.

  An exclusive `flock` on `workdir/workdir.lock`: the kernel releases it when the holder
  ends in any way (kill -9 included), so a resume is never blocked by a dead run. Where the
  filesystem cannot lock, one line says so on stderr and the run goes on unguarded. Yields
  whether the lock is held.
  """
  path = pathlib.Path(workdir) / LOCK_FILE
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      held = True
    except BlockingIOError:
      raise WorkdirBusy(f"{workdir} is in use by {holder(workdir)}; wait for that run to end or "
                        "stop it, or give another --workdir") from None
    except OSError as err:
      if err.errno not in NO_LOCKS:
        raise
      print(f"attnjax: warning: cannot lock {path} ({err.strerror}): this filesystem has no "
            "locks, so nothing stops a second run from writing into this workdir", file=sys.stderr)
      held = False
    if held:
      since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
      os.ftruncate(fd, 0)
      os.write(fd, json.dumps({"command": command, "host": socket.gethostname(), "pid": os.getpid(),
                               "since": since}).encode())
      os.fsync(fd)
    try:
      yield held
    finally:
      if held:
        os.ftruncate(fd, 0)  # while still held: the next holder's words are never cut
  finally:
    os.close(fd)  # releases the lock
