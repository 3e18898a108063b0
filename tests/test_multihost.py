"""Two processes of two CPU devices each, joined over 127.0.0.1 with gloo collectives, as
`attnjax train` runs on two hosts: the same losses as one process with four devices, a
checkpoint written by both and restored by both, and no hang when one of them dies."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest

from attnjax.train.loop import train_and_evaluate
from tests.helpers import losses, parallel_config as tiny_config, write_corpus

pytestmark = pytest.mark.slow  # `make check` runs these; `make test` leaves them out

REPO = Path(__file__).resolve().parents[1]
TOL = dict(rel=1e-5, abs=1e-6)
RUN_TIMEOUT_S = 240       # a whole two-process run, compilation included, on a busy machine
FAILURE_BOUND_S = 60      # how long a survivor may take to stop once its peer is gone


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = tmp_path_factory.mktemp("multihost")
  write_corpus(root / "corpus")
  return root


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Workers:
  """`attnjax train` as processes 0 and 1 of one run; every one is killed on the way out.

  `slurm=False`: joined by --coordinator_address/--num_processes/--process_id; `slurm=True`:
  by the environment `srun` gives its tasks, with no flags (JAX_COORDINATOR_PORT picks the port).
  """

  def __init__(self, root, workdir, strategy: str, *overrides: str, slurm: bool = False):
    self.logs = workdir.parent / f"{workdir.name}-{strategy}-logs"
    self.logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    # conftest.py's XLA flags and compilation cache, with 2 devices per process instead of 4
    xla_flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", os.environ.get("XLA_FLAGS", ""))
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"{xla_flags} --xla_force_host_platform_device_count=2".strip())
    self.procs, self._files = [], []
    for i in range(2):
      cmd = [sys.executable, "-m", "attnjax.cli", "train", "--quiet", "--workdir", str(workdir),
             "--config", f"{REPO}/tests/helpers.py:root={root},strategy={strategy}", *overrides]
      if slurm:
        env.update(SLURM_JOB_ID="4242", SLURM_STEP_NODELIST="localhost", SLURM_NTASKS="2",
                   SLURM_PROCID=str(i), SLURM_LOCALID=str(i), JAX_COORDINATOR_PORT=str(port))
      else:
        cmd += [f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"]
      self._files += [open(self.logs / f"{i}.out", "w"), open(self.logs / f"{i}.err", "w")]
      self.procs.append(subprocess.Popen(cmd, cwd=REPO, env=dict(env), stdout=self._files[-2],
                                         stderr=self._files[-1]))

  def out(self, i: int) -> str:
    return (self.logs / f"{i}.out").read_text()

  def err(self, i: int) -> str:
    return (self.logs / f"{i}.err").read_text()

  def wait(self, timeout: float = RUN_TIMEOUT_S) -> list[int]:
    deadline = time.monotonic() + timeout
    try:
      return [p.wait(timeout=max(deadline - time.monotonic(), 0.1)) for p in self.procs]
    except subprocess.TimeoutExpired:
      raise AssertionError(f"workers still running after {timeout:.0f} s; "
                           f"stderr of 0: {self.err(0)[-2000:]}\nstderr of 1: {self.err(1)[-2000:]}")

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    for p in self.procs:
      if p.poll() is None:
        p.kill()
        p.wait()
    for f in self._files:
      f.close()


def test_two_processes_train_save_and_resume_as_one_process_does(root):
  """Mesh for steps 1-6 (checkpoints 3 and 6); checkpoint 6 is then damaged, so pmap (started
  as SLURM would) restores 3, sets 6 aside and trains 4-6 again, writing a new 6: the losses
  of one process with 4 devices."""
  train_and_evaluate(tiny_config(root, strategy="mesh"), root / "one_process", progress=False)
  assert jax.device_count() == 4
  workdir = root / "two_processes"
  with Workers(root, workdir, "mesh") as w:
    assert w.wait() == [0, 0], (w.err(0)[-2000:], w.err(1)[-2000:])
  for path in (workdir / "checkpoints" / "6").rglob("*"):
    if path.is_file() and path.parent.name == "d":   # the array data files
      path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
  with Workers(root, workdir, "pmap", slurm=True) as w:
    assert w.wait() == [0, 0], (w.err(0)[-2000:], w.err(1)[-2000:])
    assert "at step 3 of 6" in w.out(0) and "at step 3" not in w.out(1)  # process 0 speaks
    assert '"step": 6' in w.out(0) and '"step": 6' not in w.out(1)
  assert len(list((workdir / "checkpoints.unreadable").iterdir())) == 1
  assert (workdir / "checkpoints" / "6").is_dir()                       # written again
  steps = [line for line in (workdir / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
  assert len(steps) == 9  # once per step run, by process 0 only: 1-6, then 4-6 again
  assert losses(workdir) == pytest.approx(losses(root / "one_process"), **TOL)  # the last of each


def test_when_one_process_is_killed_the_other_stops_and_says_why(root, tmp_path):
  workdir = tmp_path / "killed"
  with Workers(root, workdir, "mesh", "--config.train.num_steps=100000",
               "--config.train.checkpoint_every=100000", "--config.train.eval_every=100000") as w:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    metrics = workdir / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().count("\n") >= 3):  # training is under way
      assert time.monotonic() < deadline and all(p.poll() is None for p in w.procs), w.err(0)[-2000:]
      time.sleep(0.2)
    w.procs[1].send_signal(signal.SIGKILL)
    try:
      code = w.procs[0].wait(timeout=FAILURE_BOUND_S)
    except subprocess.TimeoutExpired:
      raise AssertionError(f"process 0 still running {FAILURE_BOUND_S} s after process 1 was killed")
  assert code != 0, w.err(0)[-2000:]
  # A collective that fails at once gives our line; one that waits is ended by JAX when the
  # dead process's heartbeats stop (parallel.HEARTBEAT_TIMEOUT_S), with JAX's line.
  reasons = ("attnjax train: error: lost contact with another process of this run",
             "Terminating process because the JAX distributed service detected fatal errors. "
             "This most likely indicates that another task died")
  assert any(r in w.err(0) for r in reasons), w.err(0)[-3000:]
