"""A workdir's config: written when training starts, read by everything that comes after,
and held against the config of a run that continues it.

The checkpoints beside it are `attnjax/train/checkpoint.py`'s; the model they hold is read by
`attnjax/trained.py`.
"""

import json
import pathlib

import ml_collections

from attnjax import config as config_lib


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
