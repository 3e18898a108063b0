"""Test-wide settings, made before jax is imported anywhere.

Four CPU devices, so the parallel paths run here as on a real host; XLA's cheapest
backend optimisation level and a persistent compilation cache, because compiling tiny models
dominates the suite's time (the tests' subprocesses inherit all three).
"""

import gc
import os
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
                           " --xla_backend_optimization_level=0").strip()
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="attnjax-jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
  """Drops every compiled program after each test module. XLA maps about five memory regions
  per CPU executable and keeps them while jax caches it; the suite compiles thousands, and past
  the kernel's limit on mappings (vm.max_map_count, 65,530 by default) the next compile or
  cache load segfaults, in whichever test comes then. Recompiling is a cache read."""
  yield
  jax.clear_caches()
  gc.collect()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """One data dir for the session: each corpus is prepared once, on first use."""
  return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def trained(data_dir, tmp_path_factory):
  """A workdir with a tiny Luong RNN trained for 6 steps on numbers:fr."""
  from attnjax.train.loop import train_and_evaluate
  from tests.helpers import tiny_config
  workdir = tmp_path_factory.mktemp("trained") / "run"
  train_and_evaluate(tiny_config(data_dir, steps=6), workdir, progress=False)
  return workdir
