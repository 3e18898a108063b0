"""Both strategies on any number of devices take the steps one device takes, and a checkpoint
moves between strategies and device counts (4 forced CPU devices, see conftest.py)."""

import jax
import pytest

from attnjax import config as config_lib
from attnjax import parallel
from attnjax.train.loop import train_and_evaluate
from tests.helpers import losses, parallel_config as tiny_config, write_corpus

pytestmark = pytest.mark.slow  # `make check` runs these; `make test` leaves them out

TOL = dict(rel=1e-5, abs=1e-6)  # only the order of the float sums differs


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = tmp_path_factory.mktemp("parallel")
  write_corpus(root / "corpus")
  return root


@pytest.fixture(scope="module")
def one_device(root):
  train_and_evaluate(tiny_config(root, num_devices=1), root / "one_device", progress=False)
  return losses(root / "one_device")


def test_mesh_on_four_devices_takes_the_one_device_steps(root, one_device):
  assert jax.device_count() == 4
  train_and_evaluate(tiny_config(root, strategy="mesh"), root / "mesh4", progress=False)
  assert sorted(one_device) == [1, 2, 3, 4, 5, 6]
  assert losses(root / "mesh4") == pytest.approx(one_device, **TOL)


def test_pmap_checkpoint_resumes_under_fsdp_on_two_devices(root, one_device, capsys):
  """3 steps with pmap on 4 devices, then 3 more with the mesh (fsdp=2) on 2: one run's losses."""
  workdir = root / "moved"
  train_and_evaluate(tiny_config(root, strategy="pmap", steps=3), workdir, progress=False)
  train_and_evaluate(tiny_config(root, strategy="mesh", steps=6, num_devices=2, fsdp=2), workdir,
                     progress=False)
  assert "at step 3 of 6" in capsys.readouterr().out
  assert losses(workdir) == pytest.approx(one_device, **TOL)


def test_a_batch_that_does_not_split_over_the_devices_is_one_line(root, tmp_path):
  config = tiny_config(root)
  config.data.batch_size = 6
  with pytest.raises(ValueError, match=r"^data.batch_size=6 does not divide evenly over 4 devices; "
                                       r"use a multiple of 4$"):
    train_and_evaluate(config, tmp_path / "run", progress=False)


def test_the_device_subset_is_validated():
  assert len(parallel.select_devices(0)) == len(parallel.select_devices(4)) == 4
  assert parallel.select_devices(2) == jax.devices()[:2]
  with pytest.raises(ValueError, match="parallel.num_devices=5 cannot be split"):
    parallel.select_devices(5)
  config = config_lib.base()
  config.model = config_lib.rnn_model()
  config.parallel.num_devices = -1
  with pytest.raises(config_lib.ConfigError, match="parallel.num_devices=-1"):
    config_lib.validate(config)


@pytest.mark.parametrize("env, cluster", [
    ({}, None),
    ({"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "n[1-2]", "SLURM_NTASKS": "8"}, "slurm"),
    ({"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "n1", "SLURM_NTASKS": "1"}, None),  # one task
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "8"}, None),  # sbatch's shell, not an srun step
    ({"OMPI_COMM_WORLD_SIZE": "4"}, "ompi"),
    ({"OMPI_COMM_WORLD_SIZE": "1"}, None),
    ({"TPU_WORKER_HOSTNAMES": "t0,t1"}, "tpu"),
])
def test_cluster_managers_are_detected_from_their_environment(monkeypatch, env, cluster):
  for name in ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE",
               "TPU_WORKER_HOSTNAMES"):
    monkeypatch.delenv(name, raising=False)
  for name, value in env.items():
    monkeypatch.setenv(name, value)
  assert parallel.detect_cluster() == cluster


def test_without_a_cluster_one_process_runs_alone_and_partial_flags_are_refused(monkeypatch):
  monkeypatch.setattr(parallel, "detect_cluster", lambda: None)
  assert parallel.initialize_distributed() is False
  with pytest.raises(parallel.DistributedError, match="needs all three of --coordinator_address"):
    parallel.initialize_distributed("127.0.0.1:1234", num_processes=2)
  with pytest.raises(parallel.DistributedError, match=r"--process_id=2 must be in \[0, --num_processes=2\)"):
    parallel.initialize_distributed("127.0.0.1:1234", 2, 2)


def test_data_parallel_mesh_step_exchanges_only_the_gradient_sum():
  """Under the mesh with the batch split four ways (fsdp=1), the compiled training step's only
  collectives are all-reduces (of gradients and metrics): the loss's gradient stays local."""
  import re

  import numpy as np

  from attnjax.speed import bench
  from attnjax.train import state as state_lib
  from attnjax.train import steps

  args = bench.parse_args("--model transformer --d-model 16 --heads 2 --ff 32 --layers 1 --vocab 32 "
                          "--batch 8 --src-len 4 --tgt-len 4".split())
  model, params, batch = bench.setup(args)
  cfg = bench.train_config(args)
  runner = parallel.MeshRunner(*steps.bind(model, cfg), fsdp=1, devices=jax.devices())
  state = runner.put_state(state_lib.TrainState.create(params, state_lib.make_optimizer(cfg)))
  batch = runner.put_batch({k: np.asarray(v) for k, v in batch.items()})
  hlo = runner.jitted_train.lower(state, batch, jax.random.PRNGKey(0)).compile().as_text()
  collectives = re.findall(r"= \S+ (all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter)\(", hlo)
  assert set(collectives) == {"all-reduce"}, collectives
