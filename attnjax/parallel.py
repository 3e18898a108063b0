"""Devices: the only module that knows about them.

Two data-parallel strategies run the same pure step functions (`attnjax.train.steps`):

* `mesh` — `jax.jit` over a device mesh with axes (`data`, `fsdp`). The global batch is
  split over both axes; parameters and optimizer state are sharded over `fsdp` (each leaf
  along its largest dimension that divides evenly) and replicated over `data`. The compiler
  inserts the gradient reductions. This is JAX's recommended path.
* `pmap` — the train state replicated on every local device, the batch split over them,
  gradients and metrics summed with `lax.psum` over the named axis `batch`.

Both take the global batch as numpy arrays holding this process's rows and return metrics
summed over the global batch, so a run gives the same losses on 1 device or 64, in one
process or many.

Many processes (one per host, or one per GPU) are joined by `initialize_distributed` before
anything touches a device: under SLURM, Open MPI or on a Cloud TPU VM JAX reads the layout
from the environment; elsewhere give the coordinator address, process count and index.
"""

import glob
import importlib.util
import logging
import os
import pathlib
import re
import signal
import sys
import traceback

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from attnjax.config import ConfigError
from attnjax.errors import Error

AXIS = "batch"   # the pmap axis name the steps reduce over

# How long a dead process may go unnoticed: when its heartbeats to the coordinator stop, JAX
# ends every other process. JAX's own default (100 s) is longer than a step should wait.
HEARTBEAT_TIMEOUT_S = 30
# How long the processes wait for each other at start-up, and at exit.
INITIALIZATION_TIMEOUT_S = 300
SHUTDOWN_TIMEOUT_S = 60


class DistributedError(Error, RuntimeError):
  """The processes of a multi-process run cannot be joined; the message says how to fix it."""


# ---------------------------------------------------------------- start-up


def detect_cluster() -> str | None:
  """The cluster manager that launched this process as one of several, or None.

  The environments JAX's `jax.distributed.initialize()` reads by itself: SLURM under `srun`
  with more than one task, Open MPI's `mpirun` with more than one rank, a Cloud TPU VM (libtpu
  and Google TPU chips on the PCI bus; JAX asks the VM's metadata server for the workers).
  """
  env = os.environ
  if ("SLURM_JOB_ID" in env and "SLURM_STEP_NODELIST" in env
      and int(env.get("SLURM_NTASKS", "1")) > 1):
    return "slurm"
  if int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
    return "ompi"
  if env.get("TPU_WORKER_HOSTNAMES") or (importlib.util.find_spec("libtpu") and _tpu_chips()):
    return "tpu"
  return None


def _tpu_chips() -> int:
  google = "0x1ae0"  # Google's PCI vendor id, as JAX's hardware_utils checks it
  return sum(pathlib.Path(v).read_text().strip() == google
             for v in glob.glob("/sys/bus/pci/devices/*/vendor"))


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> bool:
  """Join the other processes of this run; returns False when there are none.

  With no arguments, joins only when `detect_cluster()` finds a cluster manager; with
  `coordinator_address` ("host:port" of process 0), `num_processes` and `process_id` are
  needed too, unless a cluster manager supplies them. Must run before any JAX computation.
  On CPU the processes' collectives go over TCP with gloo (JAX's default there).
  """
  if jax.distributed.is_initialized():
    return True
  explicit = (coordinator_address, num_processes, process_id)
  cluster = detect_cluster()
  if all(x is None for x in explicit) and cluster is None:
    return False
  if cluster is None and None in explicit:
    raise DistributedError("a multi-process run needs all three of --coordinator_address (host:port of "
                           "process 0), --num_processes and --process_id")
  if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
    raise DistributedError(f"--process_id={process_id} must be in [0, --num_processes={num_processes})")
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               initialization_timeout=INITIALIZATION_TIMEOUT_S,
                               heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
                               shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S)
  except Exception as err:  # noqa: BLE001 -- JAX raises several types here; all mean the same
    where = f"coordinator {coordinator_address}" if coordinator_address else f"the {cluster} environment"
    hint = "" if coordinator_address else (" (if JAX cannot read this launcher's environment, e.g. "
                                           "Open MPI 5, pass --coordinator_address, --num_processes "
                                           "and --process_id)")
    raise DistributedError(f"could not join the other processes via {where}: "
                           f"{' '.join(str(err).split())[:300]}{hint}") from None
  logging.info("process %d of %d; %d local devices of %d", jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())
  return True


def peer_failure(err: BaseException) -> str | None:
  """The one-line message when `err` (or its cause) is a collective that failed because another
  process of this multi-process run is gone; None otherwise."""
  if not jax.distributed.is_initialized():
    return None
  while err is not None and not isinstance(err, jax.errors.JaxRuntimeError):
    err = err.__cause__ or err.__context__
  text = " ".join(str(err).split()) if err is not None else ""
  if not re.search(r"gloo|nccl|connection|peer|unavailable|heartbeat", text, re.IGNORECASE):
    return None
  return (f"lost contact with another process of this run ({text[:200]}); it most likely died or "
          f"was killed: see its log for why. Stopping this process too")


def exit_now_if_distributed(code: int, show_traceback: bool = False) -> None:
  """After a failure in a multi-process run, exit at once with `code`; otherwise return.

  A normal exit waits at JAX's shutdown barrier for every other process, which may be dead, or
  alive and blocked in a collective waiting for this one: either way it would hang until the
  heartbeat timeout and then abort. Exiting now closes this process's connections, so the
  others' next collective fails at once and they stop in turn, each saying why.
  """
  if not jax.distributed.is_initialized():
    return
  if show_traceback:
    traceback.print_exc()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)


def from_lead(flag: bool) -> bool:
  """Process 0's `flag`, on every process (a collective: all processes must call it)."""
  if jax.process_count() == 1:
    return flag
  return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def lead_first(fn, name: str):
  """`fn()` on process 0, then on the others: for work whose output they then find on disk."""
  if jax.process_count() == 1:
    return fn()
  out = fn() if jax.process_index() == 0 else None
  multihost_utils.sync_global_devices(name)
  return out if jax.process_index() == 0 else fn()


class StopRequest:
  """SIGTERM (a scheduler's preemption notice), read at step boundaries: `stop(step) -> bool`.

  In one process a Python handler sets a flag. Across processes the signal lands at different
  steps, but a checkpoint needs every process at the same one: there JAX's preemption sync
  service, which catches SIGTERM itself, names a step that all of them stop at.
  """

  def __init__(self):
    self._shared = jax.process_count() > 1
    self._signal = None
    if not self._shared:
      self._previous = signal.signal(signal.SIGTERM, lambda signum, _: setattr(self, "_signal", signum))

  def __call__(self, step: int) -> bool:
    if self._shared:
      return multihost_utils.reached_preemption_sync_point(step)
    return self._signal is not None

  def close(self) -> None:
    if not self._shared:
      signal.signal(signal.SIGTERM, self._previous)


def select_devices(num_devices: int = 0) -> list:
  """`num_devices` devices (0 = all), the same number from every process, grouped by process."""
  processes, local = jax.process_count(), jax.local_device_count()
  per_process = local if num_devices == 0 else num_devices // processes
  if num_devices % processes or not 1 <= per_process <= local:
    raise ConfigError(f"parallel.num_devices={num_devices} cannot be split evenly over {processes} "
                     f"process(es) of {local} devices; use 0 (all) or a multiple of {processes} "
                     f"up to {processes * local}")
  by_process = [[d for d in jax.devices() if d.process_index == p][:per_process]
                for p in range(processes)]
  return [d for group in by_process for d in group]


# ---------------------------------------------------------------- runners


def _fsdp_spec(shape, fsdp: int) -> P:
  """Shard a parameter's largest evenly divisible dimension over `fsdp`; replicate the rest."""
  if fsdp > 1:
    for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
      if shape[dim] % fsdp == 0 and shape[dim] >= fsdp:
        spec = [None] * len(shape)
        spec[dim] = "fsdp"
        return P(*spec)
  return P()


class MeshRunner:
  """`jax.jit` with `NamedSharding` over a (`data`, `fsdp`) mesh."""

  strategy = "mesh"

  def __init__(self, train_step, eval_step, fsdp: int = 1, devices=None):
    devices = np.asarray(devices if devices is not None else select_devices())
    if devices.size % fsdp:
      raise ConfigError(f"parallel.fsdp={fsdp} does not divide the {devices.size} devices")
    # Devices come grouped by process, so an fsdp group stays within one host when it can.
    self.mesh = Mesh(devices.reshape(devices.size // fsdp, fsdp), ("data", "fsdp"))
    self.num_devices = devices.size
    self.local_devices = [d for d in devices.flat if d.process_index == jax.process_index()]
    self.fsdp = fsdp
    self._batch_sharding = NamedSharding(self.mesh, P(("data", "fsdp")))
    self._replicated = NamedSharding(self.mesh, P())
    self._train_step, self._eval_step = train_step, eval_step
    self.jitted_train = self.jitted_eval = None  # the jitted steps (set by put_state), for lowering

  def state_sharding(self, state):
    return jax.tree.map(lambda x: NamedSharding(self.mesh, _fsdp_spec(np.shape(x), self.fsdp)), state)

  def put_state(self, state):
    """Host (or differently placed) state -> sharded over this mesh, across all processes."""
    sharding = self.state_sharding(state)
    state = jax.tree.map(_to_global, state, sharding)
    if self.jitted_train is None:
      self.jitted_train = jax.jit(self._train_step, out_shardings=(sharding, self._replicated),
                                  in_shardings=(sharding, self._batch_sharding, self._replicated),
                                  donate_argnums=0)
      self.jitted_eval = jax.jit(self._eval_step, in_shardings=(sharding.params, self._batch_sharding),
                                 out_shardings=self._replicated)
    return state

  def checkpointable(self, state):
    """The state as global arrays Orbax can save from every process."""
    return state

  def abstract_state(self, state):
    """Shapes, dtypes and shardings to restore a checkpoint onto this mesh."""
    sharding = self.state_sharding(state)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=s), state, sharding)

  def put_batch(self, batch):
    return {k: jax.make_array_from_process_local_data(self._batch_sharding, v) for k, v in batch.items()}

  def train_step(self, state, batch, rng):
    return self.jitted_train(state, self.put_batch(batch), rng)

  def eval_step(self, state, batch):
    return self.jitted_eval(state.params, self.put_batch(batch))

  def params(self, state):
    """The parameters, whole on this process (gathered from the others if need be), for decoding."""
    if all(x.is_fully_addressable for x in jax.tree.leaves(state.params)):
      return state.params
    return multihost_utils.process_allgather(state.params, tiled=True)


def _to_global(x, sharding):
  """One leaf onto `sharding`: a global array is resharded, a local or host one (the same on
  every process: a fresh init or a restored pmap checkpoint) is cut into this process's shards."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return jax.device_put(x, sharding)
  x = np.asarray(jax.device_get(x))
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


class PmapRunner:
  """`jax.pmap` over every process's devices, the state replicated on each.

  Each process feeds its local devices; `psum` over `AXIS` spans all processes.
  """

  strategy = "pmap"

  def __init__(self, train_step, eval_step, devices=None):
    devices = list(devices if devices is not None else select_devices())
    self.num_devices = len(devices)
    self.local_devices = [d for d in devices if d.process_index == jax.process_index()]
    # pmap wants the same global device list on every process; it maps over the local ones.
    self.jitted_train = jax.pmap(train_step, axis_name=AXIS, in_axes=(0, 0, None), devices=devices,
                           donate_argnums=0)
    self.jitted_eval = jax.pmap(eval_step, axis_name=AXIS, devices=devices)

  def put_state(self, state):
    """One copy of the state per local device, stacked along a leading device axis."""
    n = len(self.local_devices)
    stacked = NamedSharding(Mesh(np.asarray(self.local_devices), (AXIS,)), P(AXIS))
    state = jax.tree.map(_to_host, state)
    return jax.device_put(jax.tree.map(lambda x: np.broadcast_to(x, (n,) + np.shape(x)), state), stacked)

  def checkpointable(self, state):
    """Replica 0 as host numpy: identical on every process, and Orbax writes such
    (replicated) numpy arrays from process 0 only."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0))[0], state)

  def abstract_state(self, state):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), state)

  def put_batch(self, batch):
    n = len(self.local_devices)
    return {k: v.reshape((n, v.shape[0] // n) + v.shape[1:]) for k, v in batch.items()}

  def train_step(self, state, batch, rng):
    state, metrics = self.jitted_train(state, self.put_batch(batch), rng)
    return state, jax.tree.map(lambda x: x[0], metrics)

  def eval_step(self, state, batch):
    return jax.tree.map(lambda x: x[0], self.jitted_eval(state.params, self.put_batch(batch)))

  def params(self, state):
    return jax.tree.map(lambda x: x[0], state.params)


def _to_host(x):
  """A (possibly global, e.g. mesh-sharded) array as host numpy; the same on every process."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return multihost_utils.process_allgather(x, tiled=True)
  return np.asarray(jax.device_get(x))


def make_runner(parallel_cfg, bind_steps, devices=None):
  """The runner `config.parallel.strategy` names, on `parallel.num_devices` devices (0 = all).

  `bind_steps(axis_name) -> (train_step, eval_step)` gives the pure steps reducing over
  `axis_name` (None under the mesh, where the compiler reduces).
  """
  if devices is None:
    devices = select_devices(parallel_cfg.num_devices)
  if parallel_cfg.strategy == "mesh":
    return MeshRunner(*bind_steps(None), fsdp=parallel_cfg.fsdp, devices=devices)
  if parallel_cfg.strategy == "pmap":
    return PmapRunner(*bind_steps(AXIS), devices=devices)
  raise ConfigError(f"parallel.strategy={parallel_cfg.strategy!r}: expected mesh or pmap")


def check_batch_divides(global_batch: int, num_devices: int, where: str = "data.batch_size"):
  if global_batch % num_devices:
    raise ConfigError(f"{where}={global_batch} does not divide evenly over {num_devices} devices; "
                     f"use a multiple of {num_devices}")
