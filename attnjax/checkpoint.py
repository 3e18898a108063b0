"""Orbax checkpoints of a workdir: the train state, the data iterator and the config, written by
training; read back whole by training and, parameters only, by inference.

Saves are asynchronous; the manager keeps the last `keep` steps plus the best one by
validation BLEU. A checkpoint that cannot be read (truncated, damaged, half-written) is
reported and skipped in favour of the newest one that can; nothing is deleted.
"""

import logging
import pathlib
import shutil
import time

import jax
from jax.experimental import multihost_utils

import orbax.checkpoint as ocp

from attnjax.errors import Error
from orbax.checkpoint import checkpoint_managers as policies


class CheckpointError(Error, RuntimeError):
  pass


class _ReadOnlyIsNoNews(logging.Filter):
  """Orbax warns that a manager opened read-only cannot write: reading a workdir says nothing."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Given directory is read only")


logging.getLogger("absl").addFilter(_ReadOnlyIsNoNews())


def manager(workdir, keep: int = 2, every: int = 1, read_only: bool = False) -> ocp.CheckpointManager:
  directory = pathlib.Path(workdir).absolute() / "checkpoints"
  preserve = policies.AnyPreservationPolicy([
      policies.LatestN(n=max(keep, 1)),
      policies.BestN(get_metric_fn=lambda m: m["bleu"], n=1, keep_checkpoints_without_metrics=False),
  ])
  options = ocp.CheckpointManagerOptions(
      preservation_policy=preserve, read_only=read_only, create=not read_only,
      enable_async_checkpointing=True, save_interval_steps=0 if read_only else 1)
  return ocp.CheckpointManager(directory, options=options, item_names=("state", "data", "meta"))


def save(mngr, step: int, state, data_state: dict, meta: dict, bleu: float | None = None) -> None:
  """Start an asynchronous save; a failed write (full or read-only disk) is a CheckpointError."""
  args = ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state),
                            meta=ocp.args.JsonSave(meta))
  try:
    mngr.save(step, args=args, metrics=None if bleu is None else {"bleu": float(bleu)}, force=True)
  except Exception as err:  # noqa: BLE001 -- includes the previous async save's failure
    raise CheckpointError(f"could not write the checkpoint of step {step} in {mngr.directory} "
                          f"({_reason(err)}); earlier checkpoints are intact") from err


def wait(mngr) -> None:
  """Block until pending saves are on disk; a failed one is a CheckpointError."""
  try:
    mngr.wait_until_finished()
  except Exception as err:  # noqa: BLE001
    raise CheckpointError(f"a checkpoint in {mngr.directory} could not be written ({_reason(err)}); "
                          f"earlier checkpoints are intact") from err


def _reason(err: BaseException) -> str:
  while err.__cause__ is not None or err.__context__ is not None:
    if isinstance(err, OSError):
      break
    err = err.__cause__ or err.__context__
  text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
  return text[:200]


def restore(mngr, abstract_state, step: int | None = None, set_aside: bool = True):
  """Restore `step` (default: the newest readable one); returns (step, state, data_state, meta).

  With `set_aside`, unreadable checkpoints newer than the restored one are moved to
  `checkpoints.unreadable/` beside the checkpoints (kept for inspection, out of the
  manager's way, so training can write those steps again) with a warning.
  Returns None when the workdir has no checkpoint at all.
  """
  args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore(),
                            meta=ocp.args.JsonRestore())
  found = _newest_readable(mngr, args, step, set_aside)
  if found is None:
    return None
  candidate, restored = found
  return candidate, restored.state, restored.data, restored.meta


def read_params(mngr, abstract_params, step: int | None = None):
  """(step, parameters) of `step` (default: the newest readable one), nothing else read: not
  the optimizer state, the data state or the metadata. What inference restores; None when
  there is no checkpoint. Nothing is set aside: reading a workdir changes nothing in it."""
  target = {"params": abstract_params}
  args = ocp.args.Composite(state=ocp.args.PyTreeRestore(
      target, restore_args=ocp.checkpoint_utils.construct_restore_args(target), partial_restore=True))
  found = _newest_readable(mngr, args, step, set_aside=False)
  if found is None:
    return None
  params = found[1].state["params"]
  try:
    same = jax.tree.all(jax.tree.map(lambda a, w: (a.shape, a.dtype) == (w.shape, w.dtype),
                                     params, abstract_params))
  except ValueError:  # another tree of parameters
    same = False
  if not same:
    raise CheckpointError(f"checkpoint {found[0]} in {mngr.directory} holds parameters of other "
                          "shapes than the model's")
  return found[0], params


def _newest_readable(mngr, args, step, set_aside):
  """(step, restored) of `step` or the newest checkpoint that `args` can read; see `restore`."""
  steps = sorted(mngr.all_steps(), reverse=True) if step is None else [step]
  bad = []
  for candidate in steps:
    try:
      restored = mngr.restore(candidate, args=args)
    except Exception as err:  # noqa: BLE001 -- any unreadable checkpoint is skipped, never fatal
      logging.warning("checkpoint %s is unreadable (%s); trying an older one",
                      pathlib.Path(mngr.directory) / str(candidate), _reason(err))
      bad.append(candidate)
      continue
    if bad and set_aside:
      if jax.process_index() == 0:
        _set_aside(mngr, bad)
      if jax.process_count() > 1:  # every process read the same files, so all are here
        multihost_utils.sync_global_devices("attnjax: unreadable checkpoints set aside")
        mngr.reload()              # the others forget the moved steps too
    return candidate, restored
  if steps:
    raise CheckpointError(f"none of the checkpoints {sorted(steps)} in {mngr.directory} can be read; "
                          f"move them away to start afresh")
  return None


def _set_aside(mngr, steps) -> None:
  directory = pathlib.Path(mngr.directory)
  aside = directory.parent / "checkpoints.unreadable"
  aside.mkdir(exist_ok=True)
  for step in steps:
    target = aside / f"{step}-{int(time.time())}"
    shutil.move(str(directory / str(step)), str(target))
    logging.warning("moved unreadable checkpoint %s to %s", directory / str(step), target)
  mngr.reload()
