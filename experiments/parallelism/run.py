r"""Experiment 4: what the Transformer's parallelism buys, measured (Vaswani et al. 2017, Table 1).

    python -m experiments.parallelism.run --preset cpu     # then: python -m experiments.parallelism.report

Three models of matched parameter counts (within 10 %): an RNN without attention
(`configs/rnn_seq2seq.py`), an RNN with attention (`configs/rnn_luong.py`, general score, input
feeding) and the Transformer (`configs/transformer.py`); the RNNs embed with d_model and their
hidden size is solved for so that their parameter count (`jax.tree.leaves` of the parameters) matches the Transformer's.

(a) steps.json: the time of one training step (`attnjax.train.steps.train_step` under `jax.jit`,
    warm-up steps first, then the median of timed steps, each ended by `block_until_ready`) and
    target tokens per second, against the sequence length n (source = target = n tokens).
(b) loops.json: the sequential steps each model executes, read from the compiled forward pass:
    every `while` loop in the optimised HLO with its trip count (XLA's `known_trip_count`, else
    the constant in the loop's condition). An RNN runs one loop of n iterations per layer and
    direction; the Transformer none (Table 1: O(n) against O(1) sequential operations).
(c) devices.json: training throughput against the number of devices, under the `pmap` and
    `mesh` strategies (`attnjax.parallel.make_runner`), the batch per device fixed. Each device
    count runs in its own process: on a CPU the devices are `--xla_force_host_platform_device_count`
    host devices, which must be set before JAX starts. Counts above the devices present are skipped.

Presets:
  smoke  tiny models, n = 8 (loops at 8 and 16), 1 and 2 devices: seconds (tests/test_experiments.py).
  cpu    Transformer `small` (d_model 128, 2+2 layers), vocabulary 2,000, batch 8, n = 16 to 256;
         1, 2 and 4 host devices at n = 32. Measured: 14 minutes wall, 9.5 minutes of CPU, on 2
         cores shared with other jobs (load average 5-7); compiling the training step (15-37 s
         each, 27 of them) is most of it.
  full   a GPU host, sized for about 10 minutes of device time with start-up: Transformer `base`
         (d_model 512, 6+6 layers), vocabulary 8,000, 2-layer RNNs, all in bfloat16, batch 64,
         n = 16 to 1,024, 2 warm-up and 5 timed steps; also the attentive RNN with its encoder
         through cuDNN (`model.encoder_impl=cudnn`, float32: jax.experimental.rnn's only
         dtype); loops at n = 16, 128, 1,024; 1, 2, 4 and 8 devices at n = 64 where present.
         Each measurement is written as it arrives, step times first.
Results already in `<out>/<preset>/` are kept, so an interrupted run resumes where it stopped.
"""

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

from attnjax.tokens import random_batch
from experiments import common

MODELS = ("rnn_seq2seq", "rnn_attention", "transformer")
CUDNN = "rnn_attention_cudnn"  # rnn_attention with model.encoder_impl=cudnn (float32), where asked
SETTINGS = {
    "smoke": dict(transformer="tiny", vocab=64, rnn_layers=1, batch=2, lengths=(8,), warmup=1,
                  timed=2, loop_lengths=(8, 16), devices=(1, 2), device_length=8, device_batch=2,
                  device_models=("transformer",), dtype="float32", cudnn=True),
    "cpu": dict(transformer="small", vocab=2000, rnn_layers=1, batch=8, lengths=(16, 32, 64, 128, 256),
                warmup=1, timed=3, loop_lengths=(16, 64, 256), devices=(1, 2, 4), device_length=32,
                device_batch=8, device_models=("rnn_attention", "transformer"), dtype="float32",
                cudnn=False),
    "full": dict(transformer="base", vocab=8000, rnn_layers=2, batch=64,
                 lengths=(16, 32, 64, 128, 256, 512, 1024), warmup=2, timed=5,
                 loop_lengths=(16, 128, 1024), devices=(1, 2, 4, 8), device_length=64, device_batch=64,
                 device_models=("rnn_seq2seq", "rnn_attention", "transformer"), dtype="bfloat16",
                 cudnn=True),
}


# ---------------------------------------------------------------- models of matched size


def _transformer_config(s):
  config = common.load_config(f"configs/transformer.py:size={s['transformer']}")
  config.model.dtype = s["dtype"]
  config.model.max_len = max(s["lengths"] + (s["device_length"],))
  return config


def count_params(model_cfg, vocab: int) -> int:
  import jax
  import jax.numpy as jnp
  from attnjax import models
  model = models.build(model_cfg, vocab, vocab)
  dummy = jax.ShapeDtypeStruct((1, 8), jnp.int32)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), dummy, dummy)["params"]
  return sum(x.size for x in jax.tree.leaves(shapes))


def _rnn_config(name: str, hidden: int, s):
  spec = "configs/rnn_seq2seq.py" if name == "rnn_seq2seq" else "configs/rnn_luong.py:score=general"
  config = common.load_config(spec)
  d_model = _transformer_config(s).model.d_model
  config.model.update(embed_dim=d_model, hidden_dim=hidden, num_layers=s["rnn_layers"],
                      dtype=s["dtype"])
  return config


def matched_configs(s) -> dict:
  """{model: config}; each RNN's hidden size (a multiple of 8) solved for the Transformer's count.

  The count is quadratic in the hidden size, so three counts fix it and one more checks it.
  """
  import numpy as np
  configs = {"transformer": _transformer_config(s)}
  target = count_params(configs["transformer"].model, s["vocab"])
  for name in ("rnn_seq2seq", "rnn_attention"):
    probes = (64, 128, 256)
    counts = [count_params(_rnn_config(name, h, s).model, s["vocab"]) for h in probes]
    a, b, c = np.polyfit(probes, counts, 2)
    roots = [r.real for r in np.roots([a, b, c - target]) if abs(r.imag) < 1e-9 and r.real > 0]
    hidden = max(8, int(round(max(roots) / 8)) * 8) if roots else 8
    configs[name] = _rnn_config(name, hidden, s)
  if s["cudnn"]:  # the same RNN, its encoder as one jax.experimental.rnn call per layer
    configs[CUDNN] = _rnn_config("rnn_attention", configs["rnn_attention"].model.hidden_dim, s)
    configs[CUDNN].model.update(encoder_impl="cudnn", dtype="float32")
  return configs


# ---------------------------------------------------------------- (a) step time against length


def time_steps(train_step, state, batch, warmup: int, timed: int):
  """(median seconds per step, seconds of the first call, which compiles)."""
  import jax
  from attnjax import bench
  step = bench.stepper(train_step, state, batch, jax.random.PRNGKey(0))
  (first,), _ = bench.time_steps(step, 0, 1)
  seconds, _ = bench.time_steps(step, warmup - 1, timed)
  return statistics.median(seconds), first


def step_times(configs, s, results: dict, save) -> None:
  import jax
  from attnjax import models
  from attnjax.train import steps
  from attnjax.train.state import init_state
  for name, config in configs.items():
    model = models.build(config.model, s["vocab"], s["vocab"])
    train_step = jax.jit(steps.bind(model, config.train)[0], donate_argnums=0)
    for length in s["lengths"]:
      key = f"{name}/{length}"
      if key in results:
        continue
      state = init_state(model, config.train, 0)
      batch = random_batch(s["batch"], length, length, s["vocab"])
      seconds, first = time_steps(train_step, state, batch, s["warmup"], s["timed"])
      results[key] = {"model": name, "length": length, "batch": s["batch"], "step_s": seconds,
                      "tokens_per_s": s["batch"] * length / seconds, "first_call_s": first}
      print(f"  (a) {name:13s} n={length:4d}: {1000 * seconds:9.1f} ms/step "
            f"{s['batch'] * length / seconds:10.0f} target tokens/s", flush=True)
      save()


# ---------------------------------------------------------------- (b) loops in the compiled program


def while_loops(hlo: str) -> list[dict]:
  """Every `while` instruction of an HLO module's text: its trip count and where it came from."""
  computations, name = {}, None
  for line in hlo.splitlines():
    header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
    if header:
      name = header.group(1)
      computations[name] = []
    elif name is not None:
      computations[name].append(line)
  loops = []
  for line in hlo.splitlines():
    if not re.search(r"\swhile\(", line):
      continue
    trip = re.search(r'"known_trip_count":\{"n":"(\d+)"\}', line)
    if trip:
      count = int(trip.group(1))
    else:  # the constant the loop counter is compared with, in the condition computation
      cond = re.search(r"condition=%?([\w.\-]+)", line)
      body = "\n".join(computations.get(cond.group(1), [])) if cond else ""
      constants = [int(c) for c in re.findall(r"s32\[\] constant\((\d+)\)", body)]
      count = max(constants) if constants else None
    where = re.search(r'op_name="([^"]+)"', line)
    loops.append({"trip_count": count, "op_name": where.group(1) if where else ""})
  return loops


def _short(op_name: str) -> str:
  """`jit(forward)/RNNSeq2Seq/.../encoder/layer_0/RNN_1/while` -> `encoder/layer_0/RNN_1`."""
  parts = [p for p in op_name.split("/") if p and not p.startswith(("jit(", "RNNSeq2Seq", "Transformer"))]
  parts = [p for p in parts if p != "while" and "." not in p]
  return "/".join(parts[-3:])


def loop_counts(configs, s, results: dict, save) -> None:
  import jax
  import jax.numpy as jnp
  from attnjax import models
  for name in MODELS:  # not CUDNN: on a GPU its loop is inside cuDNN's kernel, not in the HLO
    model = models.build(configs[name].model, s["vocab"], s["vocab"])
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), jax.ShapeDtypeStruct((1, 8), jnp.int32),
                            jax.ShapeDtypeStruct((1, 8), jnp.int32))["params"]
    forward = jax.jit(lambda p, src, tgt: model.apply({"params": p}, src, tgt))
    for length in s["loop_lengths"]:
      key = f"{name}/{length}"
      if key in results:
        continue
      tokens = jax.ShapeDtypeStruct((s["batch"], length), jnp.int32)
      loops = while_loops(forward.lower(params, tokens, tokens).compile().as_text())
      for loop in loops:
        loop["where"] = _short(loop.pop("op_name"))
      trips = [l["trip_count"] for l in loops if l["trip_count"] is not None]
      results[key] = {"model": name, "length": length, "loops": loops,
                      "sequential_steps_per_layer": max(trips) if trips else 1}
      print(f"  (b) {name:13s} n={length:4d}: {len(loops)} while loops, trip counts {trips}", flush=True)
      save()


# ---------------------------------------------------------------- (c) devices, one process per count


def device_worker(root: pathlib.Path, preset: str, num_devices: int) -> dict:
  """In a process started with `num_devices` host devices: throughput of each strategy."""
  import jax
  import ml_collections
  from attnjax import models, parallel
  from attnjax.train import steps
  from attnjax.train.state import init_state
  s = SETTINGS[preset]
  out = {"num_devices": num_devices, "platform": jax.devices()[0].platform,
         "device_kind": jax.devices()[0].device_kind, "available": jax.device_count(), "rows": []}
  if jax.device_count() < num_devices:
    out["skipped"] = f"only {jax.device_count()} devices"
    return out
  sizes = json.loads((root / "models.json").read_text())["models"]
  rows, length = s["device_batch"] * num_devices, s["device_length"]
  batch = random_batch(rows, length, length, s["vocab"])
  for name in s["device_models"]:
    config = common.load_config("configs/default.py")
    config.model = ml_collections.ConfigDict(sizes[name]["model"])
    model = models.build(config.model, s["vocab"], s["vocab"])
    for strategy in ("pmap", "mesh"):
      config.parallel.update(strategy=strategy, num_devices=num_devices)
      runner = parallel.make_runner(config.parallel, lambda axis: steps.bind(model, config.train, axis))
      state = runner.put_state(init_state(model, config.train, 0))
      seconds, _ = time_steps(runner.train_step, state, batch, s["warmup"], s["timed"])
      out["rows"].append({"model": name, "strategy": strategy, "step_s": seconds,
                          "tokens_per_s": rows * length / seconds})
  return out


def _device_env(num_devices: int) -> dict:
  env = dict(os.environ)
  flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", ""))
  env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={num_devices}".strip()
  env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # on a GPU the parent holds memory too
  env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(common.REPO), env.get("PYTHONPATH")]))
  return env


def device_scaling(s, root: pathlib.Path, preset: str, results: dict, save) -> None:
  for n in s["devices"]:
    if str(n) in results:
      continue
    proc = subprocess.run([sys.executable, "-m", "experiments.parallelism.run", "--preset", preset,
                           "--out", str(root.parent.resolve()), "--worker_devices", str(n)], env=_device_env(n), cwd=common.REPO,
                          capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not lines:
      raise RuntimeError(f"the {n}-device process failed (exit {proc.returncode}): "
                         f"{proc.stderr.strip()[-2000:]}")
    results[str(n)] = json.loads(lines[-1][len("RESULT "):])
    for row in results[str(n)]["rows"]:
      print(f"  (c) {n} devices {row['model']:13s} {row['strategy']:4s}: {1000 * row['step_s']:9.1f} ms/step "
            f"{row['tokens_per_s']:10.0f} target tokens/s", flush=True)
    if "skipped" in results[str(n)]:
      print(f"  (c) {n} devices: skipped, {results[str(n)]['skipped']}", flush=True)
    save()


# ---------------------------------------------------------------- main


def main(argv=None) -> int:
  p = common.parser("parallelism", __doc__)
  p.add_argument("--worker_devices", type=int, default=0, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  s = SETTINGS[args.preset]
  root = common.runs_dir(args)
  if args.worker_devices:
    print("RESULT " + json.dumps(device_worker(root, args.preset, args.worker_devices)), flush=True)
    return 0
  root.mkdir(parents=True, exist_ok=True)
  start = time.perf_counter()
  import jax
  configs = matched_configs(s)
  sizes = {name: {"params": count_params(config.model, s["vocab"]), "model": config.model.to_dict()}
           for name, config in configs.items()}
  environment = {"platform": jax.devices()[0].platform, "device_kind": jax.devices()[0].device_kind,
                 "cpu_count": os.cpu_count(), "jax": jax.__version__, "preset": args.preset,
                 "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()}}
  (root / "models.json").write_text(json.dumps({"models": sizes, "environment": environment}, indent=2))
  print(f"  models: {time.perf_counter() - start:.0f} s", flush=True)
  print("parameters: " + ", ".join(f"{n} {sizes[n]['params']:,}" for n in sizes), flush=True)

  # Step times first: they are what a run cut short on an accelerator should still leave.
  for part, fn in (("steps", lambda r, save: step_times(configs, s, r, save)),
                   ("loops", lambda r, save: loop_counts(configs, s, r, save)),
                   ("devices", lambda r, save: device_scaling(s, root, args.preset, r, save))):
    path = root / f"{part}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    part_start = time.perf_counter()
    fn(results, lambda: path.write_text(json.dumps(results, indent=2)))
    print(f"  {part}: {time.perf_counter() - part_start:.0f} s", flush=True)
  print(f"measured in {time.perf_counter() - start:.0f} s", flush=True)
  from experiments.parallelism import report
  report.write(root, args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
