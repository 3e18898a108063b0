"""`attnjax average`: the mean parameters of a workdir's newest checkpoints, written as a
workdir of its own (Vaswani et al. 2017 average the last 5 or 20 checkpoints)."""

import pathlib
import shutil

import jax

from attnjax import checkpoint
from attnjax import config as config_lib
from attnjax.infer.trained import load
from attnjax.train.state import init_state
from attnjax.workdir import lock


def average(workdir, last: int, out) -> tuple[int, list[int]]:
  """Write into `out` a new workdir whose one checkpoint holds the mean parameters of the
  newest `last` checkpoints of `workdir` (Vaswani et al. 2017 average the last 5 or 20),
  at the newest one's step with its optimizer and data state, so that eval, translate and
  align read it as any workdir. Returns (that step, the averaged steps)."""
  workdir, out = pathlib.Path(workdir), pathlib.Path(out)
  if last < 1:
    raise config_lib.ConfigError(f"--last={last}: average at least one checkpoint")
  if out.exists() and any(out.iterdir()):
    raise config_lib.ConfigError(f"{out} already exists and is not empty; averaging writes a new "
                                 "workdir: give another --out")
  newest = load(workdir)  # checks the workdir, builds its model
  abstract = jax.eval_shape(lambda: init_state(newest.model, newest.config.train, 0))
  mngr = checkpoint.manager(workdir, read_only=True)
  try:
    steps = sorted(mngr.all_steps())[-last:]
    if len(steps) < last:
      raise checkpoint.CheckpointError(f"{workdir} has {len(steps)} checkpoint(s) {steps}; "
                                       f"--last={last} needs {last}")
    total = None
    for step in steps:
      try:
        _, state, data_state, meta = checkpoint.restore(mngr, abstract, step, set_aside=False)
      except checkpoint.CheckpointError:
        raise checkpoint.CheckpointError(
            f"checkpoint {step} in {workdir / 'checkpoints'} cannot be read as this workdir's "
            "model: it holds another model or is damaged") from None
      total = state.params if total is None else jax.tree.map(jax.numpy.add, total, state.params)
  finally:
    mngr.close()
  mean = jax.tree.map(lambda x: x / len(steps), total)
  out.mkdir(parents=True, exist_ok=True)
  with lock(out, "attnjax average"):
    shutil.copy(workdir / "config.json", out / "config.json")
    shutil.copytree(workdir / "tokenizer", out / "tokenizer")
    writer = checkpoint.manager(out, keep=1)
    try:
      checkpoint.save(writer, steps[-1], state.replace(params=mean), data_state,
                      dict(meta, averaged_from=str(workdir), averaged_steps=steps))
      checkpoint.wait(writer)
    finally:
      writer.close()
  return steps[-1], steps
