r"""The minGRU / minLSTM walk through time: associative scan against sequential, plain against
log-space form, forward and backward of one layer at a fixed budget of tokens a step.

    python -m experiments.speed.minrnn_scan                       # a table of median ms
    python -m experiments.speed.minrnn_scan --cell lstm --lengths 64 512 --steps 20

One `attnjax.models.minrnn.MinLayer` (LayerNorm, the gates' Linear maps D -> H, the walk,
W_down H -> D, residual; one direction) on random inputs [T / n, n, D]; the step is the
gradient of the outputs' sum with respect to the parameters and the inputs, jitted. At each n
the four variants are compiled, then timed side by side: --warmup calls each, then --steps
rounds of one call each (ended by `block_until_ready`), so that a busy spell of a shared
machine falls on all of them alike; each cell is the median over the rounds. The machine is named (lscpu's model name and the cores the process may
use, or the accelerator) above the table. `model.scan='auto'` takes the column this measures
as fastest on a CPU (sequential) and the associative one elsewhere (attnjax/models/minrnn.py).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp

from attnjax.models.minrnn import MIN_CELLS, MinLayer

WALKS = [(scan, log_space) for log_space in (False, True) for scan in ("sequential", "associative")]


def parse_args(argv):
  p = argparse.ArgumentParser(prog="python -m experiments.speed.minrnn_scan",
                              description=__doc__.split("\n\n")[0])
  p.add_argument("--cell", choices=MIN_CELLS, default="gru")
  p.add_argument("--tokens", type=int, default=4096, help="tokens a step (batch x n)")
  p.add_argument("--lengths", type=int, nargs="+", default=[32, 128, 512, 1024], help="n")
  p.add_argument("--embed", type=int, default=128, help="D, the stream's width")
  p.add_argument("--hidden", type=int, default=256, help="H, the state's size")
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--steps", type=int, default=15, help="timed rounds")
  args = p.parse_args(argv)
  for name in ("tokens", "embed", "hidden", "steps"):
    if getattr(args, name) < 1:
      p.error(f"--{name}={getattr(args, name)} must be at least 1")
  if any(n < 1 or n > args.tokens for n in args.lengths):
    p.error(f"--lengths {args.lengths}: each n must be between 1 and --tokens={args.tokens}")
  return args


def machine() -> str:
  """The device: an accelerator's kind, or lscpu's model name and the cores this process may use."""
  device = jax.devices()[0]
  if device.platform != "cpu":
    return f"{device.platform}: {device.device_kind}"
  name = "cpu"
  if shutil.which("lscpu"):
    out = subprocess.run(["lscpu"], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}).stdout
    name = next((l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name")), name)
  return f"cpu: {name}, {len(os.sched_getaffinity(0))} cores"


def compiled_step(args, length: int, scan: str, log_space: bool):
  """One forward and backward pass of the layer at n = `length`, compiled: a call that runs it."""
  layer = MinLayer(args.cell, args.embed, args.hidden, bidirectional=False, dropout=0.0,
                   log_space=log_space, scan=scan)
  batch = max(1, args.tokens // length)
  x = jax.random.normal(jax.random.PRNGKey(0), (batch, length, args.embed))  # [batch, n, D]
  h0 = jnp.zeros((batch, args.hidden))
  params = layer.init(jax.random.PRNGKey(1), x, h0, None, False)

  @jax.jit
  def step(params, x):
    loss = lambda params, x: jnp.sum(layer.apply(params, x, h0, None, False)[0])
    return jax.grad(loss, argnums=(0, 1))(params, x)

  step = step.lower(params, x).compile()
  return lambda: jax.block_until_ready(step(params, x))


def side_by_side(calls: list, warmup: int, rounds: int) -> list[float]:
  """Median ms of each call, timed in rounds of one call each, so that a busy spell of a shared
  machine falls on every variant alike."""
  for call in calls:
    for _ in range(warmup):
      call()
  seconds = [[] for _ in calls]
  for _ in range(rounds):
    for call, times in zip(calls, seconds):
      start = time.perf_counter()
      call()
      times.append(time.perf_counter() - start)
  return [1000 * statistics.median(times) for times in seconds]


def main(argv=None) -> int:
  args = parse_args(argv)
  print(f"{machine()}; jax {jax.__version__}; min{args.cell.upper()}, D = {args.embed}, "
        f"H = {args.hidden}, {args.tokens} tokens a step; median ms of forward + backward "
        f"over {args.steps} rounds", flush=True)
  names = [f"{'log' if log_space else 'plain'} {scan}" for scan, log_space in WALKS]
  print("| n | batch | " + " | ".join(names) + " | associative / sequential (plain) |")
  print("|---:|---:|" + "---:|" * len(names) + "---:|")
  for length in args.lengths:
    ms = side_by_side([compiled_step(args, length, scan, log_space) for scan, log_space in WALKS],
                      args.warmup, args.steps)
    print(f"| {length} | {max(1, args.tokens // length)} | " + " | ".join(f"{m:.2f}" for m in ms)
          + f" | {ms[1] / ms[0]:.2f} |", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
