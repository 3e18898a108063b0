r"""Training-step time of the `mesh` and `pmap` strategies on the same devices, interleaved.

    python -m experiments.cluster.strategies                  # 4 forced CPU devices by default
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m experiments.cluster.strategies

The real step (`attnjax.train.steps.train_step`) through `attnjax.parallel.make_runner`, on a
fixed global batch of random token ids (64 pairs of 32 tokens). Both strategies are compiled
first, then timed in alternation (ROUNDS rounds of STEPS steps each, `attnjax.speed.bench.time_steps`),
so that load from other jobs hits both alike; prints the median and every round's mean, in ms per step.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import statistics  # noqa: E402 -- XLA_FLAGS must be set before JAX starts

import jax  # noqa: E402

from attnjax import models, parallel  # noqa: E402
from attnjax.speed import bench  # noqa: E402
from attnjax.tokens import random_batch  # noqa: E402
from attnjax.train import steps  # noqa: E402
from attnjax.train.state import init_state  # noqa: E402
from experiments import common  # noqa: E402

CONFIGS = {"RNN, Luong attention": "configs/rnn_luong.py",
           "Transformer small": "configs/transformer.py:size=small"}
VOCAB, BATCH, LENGTH, ROUNDS, STEPS = 2000, 64, 32, 4, 5


def main():
  batch = random_batch(BATCH, LENGTH, LENGTH, VOCAB)
  print(f"{jax.device_count()} {jax.devices()[0].platform} devices; batch {BATCH} x {LENGTH}")
  for name, path in CONFIGS.items():
    config = common.load_config(path)
    model = models.build(config.model, VOCAB, VOCAB)
    runs = {}
    for strategy in ("mesh", "pmap"):
      config.parallel.strategy = strategy
      runner = parallel.make_runner(config.parallel, lambda axis: steps.bind(model, config.train, axis))
      state = runner.put_state(init_state(model, config.train, 0))
      step = bench.stepper(runner.train_step, state, batch, jax.random.PRNGKey(0))
      bench.time_steps(step, 1, 0)  # compile
      runs[strategy] = (step, [])
    for _ in range(ROUNDS):
      for step, times in runs.values():
        seconds, _ = bench.time_steps(step, 0, STEPS)
        times.append(1000 * statistics.mean(seconds))
    for strategy, (_, times) in runs.items():
      print(f"{name:22s} {strategy}: {statistics.median(times):7.1f} ms/step  "
            f"(rounds: {', '.join(f'{t:.0f}' for t in times)})")


if __name__ == "__main__":
  main()
