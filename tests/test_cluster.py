"""The SLURM launchers on a real scheduler: `sweep.sbatch` as a job array with its report job,
`slurm.sbatch` as two tasks joined through SLURM's environment, a requeue that resumes
exactly, and a task killed with SIGKILL.

They need a SLURM whose node is this machine (jobs read and write this test's temporary
folders): `experiments/cluster/local_slurm.sh up DIR` and `export SLURM_CONF=DIR/slurm.conf`
give one, as `.ci/run` does. Without one they skip, saying why; in CI (CI=true) they fail.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attnjax.train.loop import train_and_evaluate
from tests.helpers import losses, parallel_config, write_corpus

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
LAUNCHERS = REPO / "experiments" / "cluster"
TOL = dict(rel=1e-5, abs=1e-6)   # two processes' gloo sums against one process's
STEPS, CHECKPOINT_EVERY = 100, 20
JOB_TIMEOUT_S = 300              # a job from submission to its end, compilation included, on a busy machine
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")


def _no_slurm_here() -> str | None:
  """Why no SLURM can run this file's jobs, or None."""
  how = "bring one up: experiments/cluster/local_slurm.sh up DIR; export SLURM_CONF=DIR/slurm.conf"
  if shutil.which("sbatch") is None:
    return f"no sbatch on PATH; {how}"
  try:
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=30)
  except subprocess.TimeoutExpired:
    return f"sinfo got no answer in 30 s; {how}"
  if nodes.returncode != 0:
    return f"sinfo failed ({' '.join(nodes.stderr.split())[:200]}); {how}"
  states = dict(line.split(None, 1) for line in nodes.stdout.splitlines() if line.strip())
  here = socket.gethostname().split(".")[0]
  if here not in states:
    return f"this machine ({here}) is not a node of the SLURM that answers (nodes: {', '.join(states)}); {how}"
  if not states[here].startswith(("idle", "mixed", "alloc")):
    return f"node {here} is {states[here]}, not taking jobs"
  return None


@pytest.fixture(scope="module", autouse=True)
def slurm():
  reason = _no_slurm_here()
  if reason and os.environ.get("CI") == "true":
    pytest.fail(f"CI runs the cluster tests on a one-node SLURM, and there is none: {reason}")
  if reason:
    pytest.skip(reason)


# ---------------------------------------------------------------- jobs


def _environment(**extra) -> dict:
  """The test's environment for a job (sbatch exports it): this checkout's Python and package
  first, one CPU device per process (conftest gives four), conftest's compilation cache."""
  xla_flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", os.environ.get("XLA_FLAGS", ""))
  return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(REPO),
              JAX_PLATFORMS="cpu", XLA_FLAGS=f"{xla_flags} --xla_force_host_platform_device_count=1".strip(),
              **extra)


_submitted: list[str] = []


@pytest.fixture(autouse=True)
def _cancel_what_is_left():
  """A test that fails leaves no job behind to hold the node's CPUs from the next one."""
  yield
  if _submitted:
    subprocess.run(["scancel", *_submitted], capture_output=True, timeout=60)
    _submitted.clear()


def _sbatch(args: list[str], cwd: Path, env: dict) -> str:
  """Submit; the job's id."""
  done = subprocess.run(["sbatch", "--parsable", *args], cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=60)
  assert done.returncode == 0, f"sbatch {' '.join(args)}: {done.stderr}"
  _submitted.append(done.stdout.strip().split(";")[0])
  return _submitted[-1]


def _records(job: str) -> list[dict]:
  """`scontrol show job`'s fields of the job, one dict per array task."""
  out = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True,
                       timeout=30, check=True).stdout
  return [dict(f.split("=", 1) for f in line.split() if "=" in f) for line in out.splitlines() if line.strip()]


def _wait(job: str, tasks: int = 1, restarts: int = 0, timeout: float = JOB_TIMEOUT_S) -> list[dict]:
  """Until every one of the job's `tasks` has ended (after `restarts` requeues); their records."""
  deadline = time.monotonic() + timeout
  while True:
    records = _records(job)
    if (len(records) == tasks and all(r["JobState"] in ENDED for r in records)
        and all(int(r.get("Restarts", 0)) >= restarts for r in records)):
      return records
    assert time.monotonic() < deadline, f"job {job} not ended after {timeout:.0f} s: {records}"
    time.sleep(0.5)


def _log(path: Path) -> str:
  return path.read_text() if path.exists() else f"({path} not written)"


# ---------------------------------------------------------------- the sweep


def test_sweep_array_then_its_report_job_and_a_failed_task_named_by_the_report(data_dir, tmp_path):
  """bottleneck's smoke preset (two runs) as a 2-task array on a CPU partition, with the
  command line the launcher's header gives. First task 1's run cannot be written (a file
  where its folder goes): it fails in one line, and the report job still runs, assembles
  task 0's run and names the other. Then the same array again: task 0's run is kept, task 1's
  trains, and the report has both."""
  out, report = tmp_path / "runs", tmp_path / "report"
  env = _environment(EXPERIMENT="bottleneck", PRESET="smoke", OUT=str(out), REPORT_DIR=str(report),
                     ATTNJAX_DATA_DIR=str(data_dir))
  blocker = out / "smoke" / "bahdanau-50"
  blocker.parent.mkdir(parents=True)
  blocker.write_text("not a folder")

  def sweep() -> tuple[list[dict], dict, str]:
    array = _sbatch(["--array=0-1", "--gpus=0", "--cpus-per-task=1", str(LAUNCHERS / "sweep.sbatch")],
                    tmp_path, env)
    tasks = sorted(_wait(array, tasks=2), key=lambda r: int(r["ArrayTaskId"]))
    first = _log(tmp_path / f"attnjax-sweep-{array}_0.out")
    submitted = re.search(r"Submitted batch job (\d+)", first)
    assert submitted, f"task 0 submitted no report job: {first[-3000:]}"
    (report_job,) = _wait(submitted[1])
    assert report_job["JobName"] == "attnjax-sweep-report" and report_job["NumCPUs"] == "1", report_job
    report_log = _log(tmp_path / f"attnjax-sweep-report-{submitted[1]}.out")
    assert report_job["JobState"] == "COMPLETED", report_log[-3000:]
    return tasks, report_job, _log(tmp_path / f"attnjax-sweep-{array}_1.out")

  tasks, report_job, second = sweep()
  assert [t["JobState"] for t in tasks] == ["COMPLETED", "FAILED"], (tasks, second[-3000:])
  last = second.strip().splitlines()[-1]   # the failure, in one line
  assert "Traceback" not in second and last.startswith("python -m experiments.bottleneck.run: error: "), second
  assert f"{blocker} is a file, not a folder" in last
  md = (report / "results_smoke.md").read_text()
  assert "| encdec-30 |" in md and "| bahdanau-50 |" not in md
  assert "Not finished yet (1 of 2 runs): bahdanau-50." in md

  blocker.unlink()
  tasks, report_job, second = sweep()
  assert [t["JobState"] for t in tasks] == ["COMPLETED", "COMPLETED"], (tasks, second[-3000:])
  md = (report / "results_smoke.md").read_text()
  assert "| encdec-30 |" in md and "| bahdanau-50 |" in md and "Not finished" not in md


# ---------------------------------------------------------------- two tasks of one run


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = tmp_path_factory.mktemp("cluster")
  write_corpus(root / "corpus")
  return root


def _config(root):
  config = parallel_config(root, steps=STEPS)
  config.train.checkpoint_every = CHECKPOINT_EVERY
  return config


@pytest.fixture(scope="module")
def one_process(root):
  """The losses of the run in this process, on its four devices, uninterrupted."""
  train_and_evaluate(_config(root), root / "one_process", progress=False)
  return losses(root / "one_process")


def _train_job(root, workdir: Path) -> str:
  """slurm.sbatch as two tasks on this node's CPUs, with the command line its header gives and
  the run's flags after the script: `parallel_config` with `_config`'s steps and checkpoints,
  on 2 devices (each process has one, so the two must have joined)."""
  env = _environment(CONFIG=f"{REPO}/tests/helpers.py:root={root}", WORKDIR=str(workdir),
                     ATTNJAX_DATA_DIR=str(root / "data"))
  return _sbatch(["--nodes=1", "--ntasks-per-node=2", "--gpus-per-node=0", "--cpus-per-task=1",
                  str(LAUNCHERS / "slurm.sbatch"), f"--config.train.num_steps={STEPS}",
                  f"--config.train.checkpoint_every={CHECKPOINT_EVERY}", "--config.parallel.num_devices=2"],
                 root, env)


def _wait_for_step(job: str, workdir: Path, step: int, log: Path):
  """Until the job has logged `step` training steps; it must still be running then."""
  metrics, deadline = workdir / "metrics.jsonl", time.monotonic() + JOB_TIMEOUT_S
  while not (metrics.exists() and metrics.read_text().count('"loss"') >= step):
    (record,) = _records(job)
    assert record["JobState"] in ("PENDING", "RUNNING"), f"job {job} is {record['JobState']}: {_log(log)[-3000:]}"
    assert time.monotonic() < deadline, f"job {job} has not logged step {step} in {JOB_TIMEOUT_S} s"
    time.sleep(0.2)


def test_two_tasks_train_as_one_process_and_a_requeued_job_resumes_exactly(root, one_process):
  """`scontrol requeue`, as a preemption does: SIGTERM to both tasks, which stop after the same
  step with a checkpoint; the job comes back and resumes there. Every step is trained once,
  and the losses are one process's."""
  workdir = root / "requeued"
  job = _train_job(root, workdir)
  log = root / f"attnjax-{job}.out"
  _wait_for_step(job, workdir, 5, log)
  subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
  (record,) = _wait(job, restarts=1)
  text = _log(log)
  assert record["JobState"] == "COMPLETED", text[-3000:]
  stopped = re.search(r"stopped by SIGTERM after step (\d+); checkpoint saved", text)
  assert stopped and int(stopped[1]) < STEPS, f"the requeue came after the run's end: {text[-3000:]}"
  assert f"resumed {workdir} at step {stopped[1]} of {STEPS}" in text, text[-3000:]
  steps = [int(m) for m in re.findall(r'"step": (\d+), "loss"', (workdir / "metrics.jsonl").read_text())]
  assert steps == list(range(1, STEPS + 1))     # by process 0 alone, each step once
  assert losses(workdir) == pytest.approx(one_process, **TOL)


def _task_pid(job: str, task: int) -> int:
  """The pid of the training step's task `task` (step 1: step 0 prepared the corpus)."""
  out = subprocess.run(["scontrol", "listpids", job], capture_output=True, text=True, timeout=30,
                       check=True).stdout
  pids = [int(f[0]) for f in (line.split() for line in out.splitlines()[1:])
          if len(f) == 5 and f[2] == "1" and f[4] == str(task)]
  assert len(pids) == 1, f"task {task} of step {job}.1 not found once in scontrol listpids: {out}"
  return pids[0]


def test_a_killed_task_ends_the_job_and_resubmitting_resumes(root, one_process):
  """SIGKILL to task 1 after the first checkpoint: task 0 and the job end within 20 s (task 0
  by gloo's broken connection or by srun's --kill-on-bad-exit, not JAX's 30 s heartbeat
  timeout); what was saved is whole, so the same job submitted again resumes from it and ends
  with one process's losses."""
  workdir = root / "killed"
  job = _train_job(root, workdir)
  log = root / f"attnjax-{job}.out"
  _wait_for_step(job, workdir, CHECKPOINT_EVERY + 3, log)
  os.kill(_task_pid(job, 1), signal.SIGKILL)
  killed = time.monotonic()
  (record,) = _wait(job, timeout=60)
  assert record["JobState"] == "FAILED" and record["ExitCode"] != "0:0", (record, _log(log)[-3000:])
  assert time.monotonic() - killed < 20, f"the job outlived its killed task by 20 s: {_log(log)[-3000:]}"
  assert losses(workdir) and max(losses(workdir)) < STEPS, "the run ended before the kill"

  again = _train_job(root, workdir)
  (record,) = _wait(again)
  text = _log(root / f"attnjax-{again}.out")
  assert record["JobState"] == "COMPLETED", text[-3000:]
  resumed = re.search(rf"resumed {re.escape(str(workdir))} at step (\d+) of {STEPS}", text)
  assert resumed and int(resumed[1]) >= CHECKPOINT_EVERY, text[-3000:]
  assert not (workdir / "checkpoints.unreadable").exists(), "a checkpoint was left half-written"
  assert losses(workdir) == pytest.approx(one_process, **TOL)
