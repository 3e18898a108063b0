"""Failure behaviour: kills, preemption, damaged checkpoints, non-finite losses, failed writes."""

import json
import os
import random
import signal
import shutil
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnjax.infer import trained as trained_lib
from attnjax import checkpoint
from attnjax.train import steps
from attnjax.train.loop import TrainingError, train_and_evaluate
from tests.helpers import losses, tiny_config

pytestmark = pytest.mark.slow  # `make check` runs these; `make test` leaves them out

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(data_dir, steps_=6):
  config = tiny_config(data_dir, steps=steps_)
  config.train.update(log_every=1, eval_every=1000, eval_samples=0, checkpoint_every=3)
  return config


def _params(workdir):
  return [np.asarray(x) for x in jax.tree.leaves(trained_lib.load(workdir).params)]


def _assert_same_params(a, b):
  for x, y in zip(_params(a), _params(b)):
    np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
  """An uninterrupted run of 12 steps, checkpointing every 2."""
  workdir = tmp_path_factory.mktemp("ref") / "run"
  config = _config(data_dir, 12)
  config.train.checkpoint_every = 2
  train_and_evaluate(config, workdir, progress=False)
  return workdir


def _write_config_file(path, data_dir, num_steps, checkpoint_every=2):
  path.write_text(
      "import sys\n"
      f"sys.path.insert(0, {REPO!r})\n"
      "from tests.helpers import tiny_config\n\n"
      "def get_config():\n"
      f"  config = tiny_config({str(data_dir)!r}, steps={num_steps})\n"
      f"  config.train.update(log_every=1, eval_every=1000, eval_samples=0, checkpoint_every={checkpoint_every})\n"
      "  return config\n")


def _start(config_file, workdir):
  return subprocess.Popen([sys.executable, "-m", "attnjax.cli", "train", "--config", str(config_file),
                           "--workdir", str(workdir), "--quiet"], cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_steps(workdir, proc, count, timeout=240):
  """Until the run has logged `count` more steps than before (or it ends)."""
  metrics = workdir / "metrics.jsonl"
  start = len(metrics.read_text().splitlines()) if metrics.exists() else 0
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= start + count:
      return
    time.sleep(0.05)


def test_sigterm_then_sigkills_at_random_moments_resume_bitwise(data_dir, reference, tmp_path):
  config_file = tmp_path / "tiny.py"
  _write_config_file(config_file, data_dir, 12)
  workdir = tmp_path / "run"
  rng = random.Random(0)

  proc = _start(config_file, workdir)            # preemption: SIGTERM saves, then exits
  _wait_for_steps(workdir, proc, 2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 1, err
  assert "stopped by SIGTERM after step" in err and "checkpoint saved" in err

  for _ in range(3):                             # hard kills, anywhere, even mid-save
    proc = _start(config_file, workdir)
    _wait_for_steps(workdir, proc, 1)
    time.sleep(rng.uniform(0.0, 0.6))
    proc.kill()
    proc.wait(timeout=60)

  proc = _start(config_file, workdir)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err
  assert "resumed" in out
  _assert_same_params(workdir, reference)
  assert trained_lib.load(workdir).step == 12
  # Steps redone after a kill are logged again; every step's loss equals the uninterrupted one.
  assert losses(workdir) == losses(reference)


def test_a_second_run_on_a_held_workdir_is_refused_and_the_first_is_unharmed(data_dir, tmp_path):
  # The first run is given more steps than it will take, so it is still training whatever the
  # second one's start-up costs; it is then stopped by SIGTERM, which saves where it is.
  config_file = tmp_path / "tiny.py"
  _write_config_file(config_file, data_dir, 100_000, checkpoint_every=50)
  workdir = tmp_path / "run"
  first = _start(config_file, workdir)
  _wait_for_steps(workdir, first, 1)
  second = _start(config_file, workdir)
  _, err = second.communicate(timeout=120)
  assert first.poll() is None, "the first run ended before the second started: no overlap tested"
  lines = [l for l in err.splitlines() if l.strip()]
  assert second.returncode == 1 and len(lines) == 1, err
  assert f"{workdir} is in use by attnjax train on host " in lines[0]
  assert f"pid {first.pid}, since " in lines[0]
  first.send_signal(signal.SIGTERM)
  _, err = first.communicate(timeout=120)
  assert first.returncode == 1 and "stopped by SIGTERM after step" in err, err
  stopped = trained_lib.load(workdir).step
  assert stopped >= 1
  assert sorted(losses(workdir)) == list(range(1, stopped + 1))  # every step logged once, by one run
  assert not list((workdir / "checkpoints").glob("*orbax-checkpoint-tmp*"))

  # kill -9 of the holder: the kernel drops its lock, and the next run on the workdir resumes
  holder = _start(config_file, workdir)
  _wait_for_steps(workdir, holder, 2)
  holder.kill()
  holder.wait(timeout=60)
  logged = []  # the kill may have cut the last line short
  for line in (workdir / "metrics.jsonl").read_text().splitlines():
    try:
      logged.append(json.loads(line)["step"])
    except ValueError:
      pass
  end = max(logged) + 20  # past every step the holder reached, so past its checkpoints
  _write_config_file(tmp_path / "more.py", data_dir, end, checkpoint_every=50)
  resumed = _start(tmp_path / "more.py", workdir)
  out, err = resumed.communicate(timeout=300)
  assert resumed.returncode == 0, err
  assert "resumed" in out and trained_lib.load(workdir).step == end


def test_the_lock_names_its_holder_and_a_filesystem_without_locks_is_said_once(tmp_path, monkeypatch, capsys):
  import errno
  import fcntl
  from attnjax import workdir as workdir_lib
  from attnjax.errors import WorkdirBusy
  with workdir_lib.lock(tmp_path) as held:
    assert held
    with pytest.raises(WorkdirBusy, match=f"in use by attnjax train on host .*, pid {os.getpid()}, since "):
      with workdir_lib.lock(tmp_path):
        pass
  with workdir_lib.lock(tmp_path) as held:   # released on leaving
    assert held

  def no_locks(fd, operation):
    raise OSError(errno.ENOLCK, "No locks available")

  monkeypatch.setattr(fcntl, "flock", no_locks)
  with workdir_lib.lock(tmp_path) as held:
    assert not held
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "cannot lock" in err[0] and "this filesystem has no locks" in err[0]


def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(data_dir, reference, tmp_path, caplog):
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  newest = workdir / "checkpoints" / "12"
  for path in newest.rglob("*"):
    if path.is_file() and path.parent.name == "d":   # the array data files
      path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
  config = _config(data_dir, 12)
  config.train.checkpoint_every = 2
  train_and_evaluate(config, workdir, progress=False)   # restores step 10, trains 11 and 12
  assert any("checkpoints/12 is unreadable" in r.getMessage() for r in caplog.records)
  assert (workdir / "checkpoints" / "10").is_dir()                  # the good one is kept
  assert len(list((workdir / "checkpoints.unreadable").iterdir())) == 1  # the bad one too
  _assert_same_params(workdir, reference)


def test_half_written_checkpoint_is_never_taken_for_a_complete_one(trained, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  # What a save killed midway leaves: orbax's temporary folder, never renamed to "9".
  partial = workdir / "checkpoints" / "9.orbax-checkpoint-tmp-1234"
  (partial / "state").mkdir(parents=True)
  mngr = checkpoint.manager(workdir, read_only=True)
  assert mngr.all_steps() == [3, 6]
  mngr.close()
  assert trained_lib.load(workdir).step == 6


def _poison_step(monkeypatch, bad_step: int):
  """Make update number `bad_step` (1-based) non-finite, as a NaN in the loss would."""
  real = steps.train_step

  def poisoned(state, batch, rng, **kwargs):
    new, metrics = real(state, batch, rng, **kwargs)
    bad = state.step == bad_step - 1
    new = jax.tree.map(lambda n, o: jnp.where(bad, o, n), new, state).replace(step=state.step + 1)
    metrics = dict(metrics, loss=jnp.where(bad, jnp.nan, metrics["loss"]),
                   nonfinite=jnp.where(bad, 1.0, metrics["nonfinite"]))
    return new, metrics

  monkeypatch.setattr(steps, "train_step", poisoned)


def test_nonfinite_loss_stops_training_and_writes_no_checkpoint_after_it(data_dir, tmp_path, monkeypatch):
  _poison_step(monkeypatch, 3)
  config = _config(data_dir, 4)
  config.train.checkpoint_every = 1
  with pytest.raises(TrainingError, match="non-finite loss or gradient at step 3"):
    train_and_evaluate(config, tmp_path / "run", progress=False)
  mngr = checkpoint.manager(tmp_path / "run", read_only=True)
  assert mngr.all_steps() == [1, 2]
  mngr.close()


def test_nonfinite_update_is_skipped_and_counted_when_asked(data_dir, tmp_path, monkeypatch):
  _poison_step(monkeypatch, 2)
  config = _config(data_dir, 3)
  config.train.nan_policy = "skip"
  metrics = train_and_evaluate(config, tmp_path / "run", progress=False)
  assert metrics["skipped_updates"] == 1 and metrics["step"] == 3


def test_train_step_leaves_the_state_alone_on_a_nonfinite_loss(data_dir):
  from attnjax import models
  from attnjax.train.state import init_state
  config = _config(data_dir)
  model = models.build(config.model, 64, 64)
  state = init_state(model, config.train, 0)
  poisoned = state.replace(params=jax.tree.map(lambda p: p.at[(0,) * p.ndim].set(jnp.nan), state.params))
  batch = {k: jnp.full((4, 8), 5, jnp.int32) for k in ("src", "tgt_in", "tgt_out")}
  train_step, _ = steps.bind(model, config.train)
  new, metrics = jax.jit(train_step)(poisoned, batch, jax.random.PRNGKey(0))
  assert float(metrics["nonfinite"]) == 1.0 and int(new.step) == 1
  for a, b in zip(jax.tree.leaves((new.params, new.opt_state)), jax.tree.leaves((poisoned.params, poisoned.opt_state))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_full_disk_while_checkpointing_is_a_clear_error_and_keeps_older_checkpoints(
    data_dir, tmp_path, monkeypatch):
  import orbax.checkpoint as ocp
  real = ocp.CheckpointManager.save

  def full_disk(self, step, *args, **kwargs):
    if step == 2:
      raise OSError(28, "No space left on device")
    return real(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, "save", full_disk)
  config = _config(data_dir, 3)
  config.train.checkpoint_every = 1
  with pytest.raises(checkpoint.CheckpointError,
                     match=r"could not write the checkpoint of step 2 .*No space left on device.*intact"):
    train_and_evaluate(config, tmp_path / "run", progress=False)
  assert trained_lib.load(tmp_path / "run").step == 1
