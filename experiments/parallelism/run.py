r"""Experiment 4: what the Transformer's parallelism buys over recurrence, measured on the
machine at hand (Vaswani et al. 2017, Table 1).

    python -m experiments.parallelism.run --preset cpu     # then: python -m experiments.parallelism.report

Five models of matched parameter counts (within 10 %): an RNN without attention
(`configs/rnn_seq2seq.py`), an RNN with attention (`configs/rnn_luong.py`, general score, input
feeding), the same two as minGRUs (`configs/rnn_min.py:attention=none|luong`: a recurrence
linear in its state, walked by an associative scan, so no loop of n steps; Feng et al. 2024)
and the Transformer (`configs/transformer.py`); the RNNs embed with d_model and their
hidden size is solved for so that their parameter count matches the Transformer's. Beside them,
each RNN sized to the same work instead (`<name>_work`): its hidden size solved for the
Transformer's training FLOPs per target token at n = work_length (the project's count,
`attnjax/models/flops.py`), so that the report can tell "more arithmetic" from "less parallel".

(a) budget.json, at a fixed budget of target tokens per step (batch x n = T, source = target
    = n): the time of one training step (`attnjax.train.steps.train_step`, state donated) and
    of the teacher-forced forward pass alone, against n. Holding T fixed keeps the work per
    step of the projections constant, so what changes with n is how it can be scheduled: an
    RNN runs n dependent steps on T/n rows, the Transformer a few products over all T tokens
    (until attention's n^2 d outgrows the projections' n d^2). From the same compiled
    programs: XLA's cost analysis (FLOPs, bytes accessed) and the `while` loops with their
    trip counts (an RNN compiles to one loop of n iterations per layer and direction, the
    Transformer to none). XLA counts a loop's body once, so for the RNNs its FLOPs are those
    of one recurrent step plus everything outside the loops; the Transformer's are whole.
(b) latency.json, at batch 1: the time to encode one sentence of n tokens (`encode`), and
    greedy decoding of m tokens from a source of m (`attnjax.infer.decode`, EOS suppressed, the
    Transformer with its key/value cache), per generated token.
(c) devices.json: training throughput against the number of devices, under the `pmap` and
    `mesh` strategies, the batch per device fixed; each count in its own process. Measured
    only where there is more than one real device: host devices forced onto a CPU share its
    cores, so they say nothing about parallel hardware (the tests check their correctness).

At each length every model's programs are compiled first, then timed side by side: after
warm-up calls, rounds in which each model runs one call in turn (ended by
`block_until_ready`), so that a slow spell of a shared machine falls on all models alike;
each figure is the median over the rounds.

Presets:
  smoke  tiny models, T = 64, n = 8 and 16: seconds (tests/test_experiments.py).
  cpu    Transformer `small` (d_model 128, 2+2 layers), vocabulary 2,000, T = 4,096,
         n = 8 to 1,024; encoding at n = 8 to 1,024 and decoding m = 16, 64, 256 at batch 1.
         About 40 minutes on 2 cores for the nine models, compilation most of it.
  full   a GPU host, about 10 minutes of device time: Transformer `base` (d_model 512, 6+6),
         vocabulary 8,000, 2-layer RNNs, bfloat16, T = 65,536, n = 16 to 1,024; also the
         attentive RNN with its encoder through cuDNN (`model.encoder_impl=cudnn`, float32);
         1, 2, 4 and 8 devices at n = 64 where present. Budget rows first.
Results already in `<out>/<preset>/` are kept, so an interrupted run resumes where it stopped;
each measurement is written as it arrives. A finished run copies its four JSON files to
`<report_dir>/runs_<preset>/`, from which the report is rebuilt. The experiment reads no corpus (its batches are
random tokens of its own vocabulary) and is one run: its models are compared side by side in
one process, which jobs on several machines could not do.
"""

import argparse
import concurrent.futures
import functools
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

MODELS = ("rnn_seq2seq", "rnn_attention", "mingru", "mingru_attention", "transformer")
RNN_SPECS = {  # each recurrent model's config; the minGRUs walk time by the associative scan
    "rnn_seq2seq": "configs/rnn_seq2seq.py",
    "rnn_attention": "configs/rnn_luong.py:score=general",
    "mingru": "configs/rnn_min.py:cell=gru,attention=none",
    "mingru_attention": "configs/rnn_min.py:cell=gru,attention=luong",
}
PARTS = ("models", "budget", "latency", "devices")  # the raw files, kept beside the report
WORK = "_work"  # a model sized to the Transformer's FLOPs per target token (`work_matched`)
CUDNN = "rnn_attention_cudnn"  # rnn_attention with model.encoder_impl=cudnn (float32), where asked
SETTINGS = {
    "smoke": dict(transformer="tiny", vocab=64, rnn_layers=1, budget=64, lengths=(8, 16),
                  encode_lengths=(8, 16), decode_lengths=(8,), warmup=1, timed=2, latency_timed=2,
                  devices=(1, 2), device_length=8, device_batch=2, device_models=("transformer",),
                  dtype="float32", cudnn=True, work_length=8),
    "cpu": dict(transformer="small", vocab=2000, rnn_layers=1, budget=4096,
                lengths=(8, 16, 32, 64, 128, 256, 512, 1024),
                encode_lengths=(8, 32, 128, 512, 1024), decode_lengths=(16, 64, 256), warmup=1,
                timed=5, latency_timed=15, devices=(1, 2, 4), device_length=32, device_batch=8,
                device_models=("rnn_attention", "transformer"), dtype="float32", cudnn=False,
                work_length=64),
    "full": dict(transformer="base", vocab=8000, rnn_layers=2, budget=65536,
                 lengths=(16, 32, 64, 128, 256, 512, 1024),
                 encode_lengths=(16, 64, 256, 1024), decode_lengths=(16, 64, 256), warmup=2,
                 timed=5, latency_timed=10, devices=(1, 2, 4, 8), device_length=64,
                 device_batch=64, device_models=("rnn_seq2seq", "rnn_attention", "transformer"),
                 dtype="bfloat16", cudnn=True, work_length=64),
}


# ---------------------------------------------------------------- models of matched size


def _max_len(s) -> int:
  return max(s["lengths"] + s["encode_lengths"] + s["decode_lengths"] + (s["device_length"],))


def _transformer_config(s):
  config = common.load_config(f"configs/transformer.py:size={s['transformer']}")
  config.model.dtype = s["dtype"]
  config.model.max_len = _max_len(s)
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
  config = common.load_config(RNN_SPECS[name])
  d_model = _transformer_config(s).model.d_model
  config.model.update(embed_dim=d_model, hidden_dim=hidden, num_layers=s["rnn_layers"],
                      dtype=s["dtype"])
  if config.model.family == "minrnn":
    config.model.scan = "associative"  # the parallel walk on every device (no loop of n steps)
  return config


def solve_hidden(probes, counts, target) -> int:
  """The hidden size (a multiple of 8) at which a count measured at `probes` reaches `target`.

  Counts are at most quadratic in the hidden size (an LSTM's recurrent weights), linear where
  gates read only the input (the minGRU): a quadratic fit and its smallest positive root, as
  a fit to a line has a leading coefficient of rounding size and a spurious root far out.
  """
  import numpy as np
  a, b, c = np.polyfit(probes, counts, 2)
  roots = [r.real for r in np.roots([a, b, c - target]) if abs(r.imag) < 1e-9 and r.real > 0]
  return max(8, int(round(min(roots) / 8)) * 8) if roots else 8


def matched_configs(s) -> dict:
  """{model: config}; each RNN's hidden size (a multiple of 8) solved for the Transformer's
  count (`solve_hidden`: three counts fix it)."""
  configs = {"transformer": _transformer_config(s)}
  target = count_params(configs["transformer"].model, s["vocab"])
  for name in RNN_SPECS:
    probes = (64, 128, 256)
    counts = [count_params(_rnn_config(name, h, s).model, s["vocab"]) for h in probes]
    configs[name] = _rnn_config(name, solve_hidden(probes, counts, target), s)
  if s["cudnn"]:  # the same RNN, its encoder as one jax.experimental.rnn call per layer
    configs[CUDNN] = _rnn_config("rnn_attention", configs["rnn_attention"].model.hidden_dim, s)
    configs[CUDNN].model.update(encoder_impl="cudnn", dtype="float32")
  return configs


def train_flops_per_token(model_cfg, s, length: int) -> float | None:
  """A training step's FLOPs per target token at n = `length` on the budget: 3x the counted
  forward matrix products (`attnjax/models/flops.py`); None for a model it does not count."""
  from attnjax.models import flops
  batch = max(1, s["budget"] // length)
  try:
    return 3 * flops.forward(model_cfg, s["vocab"], batch, length, length) / (batch * length)
  except ValueError:
    return None


def work_matched(configs: dict, s) -> dict:
  """{name + WORK: config}: each RNN of `configs` with its hidden size (a multiple of 8) solved
  for the Transformer's training FLOPs per target token at n = s['work_length'], by the
  project's count, so that a difference in time per token is not a difference in arithmetic.
  Three counts fix it (`solve_hidden`). A model the count does not cover is left out (said in
  the report's model table)."""
  n = s["work_length"]
  target = train_flops_per_token(configs["transformer"].model, s, n)
  out = {}
  for name in configs:
    if name in ("transformer", CUDNN):
      continue
    probes = (64, 128, 256)
    counts = [train_flops_per_token(_rnn_config(name, h, s).model, s, n) for h in probes]
    if target is None or None in counts:
      continue
    out[name + WORK] = _rnn_config(name, solve_hidden(probes, counts, target), s)
  return out


# ---------------------------------------------------------------- what a compiled program says


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
    loops.append({"trip_count": count, "where": _short(where.group(1) if where else "")})
  return loops


def _short(op_name: str) -> str:
  """`jit(forward)/RNNSeq2Seq/.../encoder/layer_0/RNN_1/while` -> `encoder/layer_0/RNN_1`."""
  parts = [p for p in op_name.split("/") if p and not p.startswith(("jit(", "RNNSeq2Seq", "Transformer"))]
  parts = [p for p in parts if p != "while" and "." not in p]
  return "/".join(parts[-3:])


def cost(compiled) -> dict:
  """XLA's cost analysis of a compiled program: FLOPs and bytes accessed (None where absent)."""
  try:
    analysis = compiled.cost_analysis()
  except Exception:  # noqa: BLE001 -- some backends have no cost model
    analysis = None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  analysis = analysis or {}
  get = lambda key: float(analysis[key]) if key in analysis else None
  return {"xla_flops": get("flops"), "xla_bytes": get("bytes accessed")}


def timed(call, warmup: int, count: int) -> float:
  """Median seconds of `count` calls of `call()` after `warmup` more."""
  from attnjax.speed import bench
  seconds, _ = bench.time_steps(call, warmup, count)
  return statistics.median(seconds)


def side_by_side(calls: dict, warmup: int, rounds: int) -> dict:
  """{name: [seconds of each round]} of `calls` ({name: call}) timed in alternating rounds, one
  call of each per round, so that a slow spell of a shared machine falls on all of them alike.
  The rows keep every round: the report gives the median and the range."""
  from attnjax.speed import bench
  for call in calls.values():
    bench.time_steps(call, warmup, 0)
  seconds = {name: [] for name in calls}
  for _ in range(rounds):
    for name, call in calls.items():
      seconds[name] += bench.time_steps(call, 0, 1)[0]
  return seconds


def _out_of_memory(err: Exception) -> bool:
  return "RESOURCE_EXHAUSTED" in str(err) or "out of memory" in str(err).lower()


# ---------------------------------------------------------------- (a) a fixed token budget


def compile_budget(model, config, s, length: int) -> dict:
  """The training step and forward pass at batch T // n, compiled once, with what XLA says of
  them, and calls that run them (the training step carries its donated state along)."""
  import jax
  from attnjax.speed import bench
  from attnjax.train import steps
  from attnjax.train.state import init_state
  batch_size = max(1, s["budget"] // length)
  batch = random_batch(batch_size, length, length, s["vocab"])
  state = init_state(model, config.train, 0)
  params = jax.tree.map(lambda x: x.copy(), state.params)  # the training step donates the state's
  start = time.perf_counter()
  forward = jax.jit(lambda p, src, tgt: model.apply({"params": p}, src, tgt, train=False))
  forward = forward.lower(params, batch["src"], batch["tgt_in"]).compile()
  train_step = jax.jit(steps.bind(model, config.train)[0], donate_argnums=0)
  rng = jax.random.PRNGKey(0)
  train_step = train_step.lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - start
  loops = while_loops(forward.as_text())
  trips = [l["trip_count"] for l in loops if l["trip_count"] is not None]
  forward_cost, train_cost = cost(forward), cost(train_step)
  row = {"length": length, "batch": batch_size, "target_tokens": batch_size * length,
         "train_flops": train_cost["xla_flops"], "train_bytes": train_cost["xla_bytes"],
         "forward_flops": forward_cost["xla_flops"], "forward_bytes": forward_cost["xla_bytes"],
         "loops": loops, "sequential_steps_per_layer": max(trips) if trips else 1,
         "compile_s": round(compile_s, 1)}
  if config.model.family == "transformer":
    row.update(transformer_work(config.model, s["vocab"], batch_size, length))
  return {"row": row, "forward": lambda: forward(params, batch["src"], batch["tgt_in"]),
          "train": bench.stepper(train_step, state, batch, rng)}


def transformer_work(cfg, vocab: int, batch: int, length: int) -> dict:
  """The Transformer's forward matrix-product FLOPs (`attnjax.models.flops`), split into
  attention's scores and weighted sums (n^2 d) and everything else, the projections (n d^2)."""
  from attnjax.models import flops
  total = flops.forward(cfg, vocab, batch, length, length)
  attention = cfg.num_encoder_layers * 3 * (2 * 2 * batch * length * length * cfg.d_model)
  return {"attention_flops": attention, "projection_flops": total - attention}


AT_ONCE = 4  # compilations at a time on an accelerator host (as many as the sweeps have run)


def _at_once(jobs: dict) -> dict:
  """The jobs (no arguments) run in worker threads, all finished: name -> its Future. On an
  accelerator host the models' programs compile AT_ONCE at a time (XLA compiles outside the
  GIL): on a many-core host compilation, not the timing, is most of a length's wall time. So
  each row's `compile_s` is a wall time shared with the other models', and on a GPU XLA's
  autotuner may time its candidate kernels beside another model's: the timings themselves run
  one model at a time. On a CPU one job at a time: the compilations would only share its cores,
  and ten of them writing JAX's persistent compilation cache at once (as the tests enable it)
  aborted the process. One at a time runs in the calling thread, not a worker: XLA's CPU compiler
  in a worker thread crashed the process (a segmentation fault) in a full test run."""
  import jax
  if jax.devices()[0].platform == "cpu":
    return {name: _done(job) for name, job in jobs.items()}
  with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(jobs), AT_ONCE)) as pool:
    return {name: pool.submit(job) for name, job in jobs.items()}


def _done(job) -> concurrent.futures.Future:
  """The job run now, its result or error held in a Future as a worker's would be."""
  future = concurrent.futures.Future()
  try:
    future.set_result(job())
  except Exception as err:  # noqa: BLE001 -- the caller reads it from the Future, as from a worker
    future.set_exception(err)
  return future


def fixed_budget(configs, s, results: dict, save) -> None:
  """At each n, every model's programs compiled, then timed side by side."""
  from attnjax import models
  built = {name: models.build(config.model, s["vocab"], s["vocab"]) for name, config in configs.items()}
  for length in s["lengths"]:
    todo = [name for name in configs if f"{name}/{length}" not in results]
    if not todo:
      continue
    compiling = _at_once({name: functools.partial(compile_budget, built[name], configs[name], s, length)
                          for name in todo})
    ready = {}
    for name, future in compiling.items():
      try:
        ready[name] = future.result()
      except Exception as err:  # noqa: BLE001 -- an accelerator's memory is the limit at large n
        if not _out_of_memory(err):
          raise
        results[f"{name}/{length}"] = {"model": name, "length": length, "skipped": "out of memory"}
        print(f"  (a) {name:19s} n={length:4d}: out of memory, skipped", flush=True)
    if not ready:
      continue
    train = side_by_side({name: r["train"] for name, r in ready.items()}, s["warmup"], s["timed"])
    forward = side_by_side({name: r["forward"] for name, r in ready.items()}, s["warmup"], s["timed"])
    for name, r in ready.items():
      row, tokens = r["row"], r["row"]["target_tokens"]
      step_s, forward_s = statistics.median(train[name]), statistics.median(forward[name])
      row.update(step_s=step_s, tokens_per_s=tokens / step_s, us_per_token=1e6 * step_s / tokens,
                 forward_s=forward_s, forward_us_per_token=1e6 * forward_s / tokens,
                 step_rounds_s=train[name], forward_rounds_s=forward[name])
      results[f"{name}/{length}"] = {"model": name, **row}
      print(f"  (a) {name:19s} n={length:4d} batch {row['batch']:4d}: train "
            f"{row['us_per_token']:8.1f} us/token ({row['tokens_per_s']:8.0f} tokens/s), forward "
            f"{row['forward_us_per_token']:7.1f} us/token, loops "
            f"{[l['trip_count'] for l in row['loops']]}, compiled in {row['compile_s']:.0f} s",
            flush=True)
    save()


# ---------------------------------------------------------------- (b) latency at batch 1


def latency(configs, s, results: dict, save) -> None:
  """Encoding one sentence of n tokens, and greedy decoding of m tokens per generated token,
  every model's program compiled at each length and then timed side by side."""
  import jax
  from attnjax import models
  from attnjax.speed import bench
  from attnjax.infer import decode as decode_lib
  from attnjax.models import init_params
  built = {name: models.build(config.model, s["vocab"], s["vocab"]) for name, config in configs.items()}
  variables = {name: {"params": init_params(model, seed=0)} for name, model in built.items()}

  def encoder(name, src):
    encode = jax.jit(lambda v, src: built[name].apply(v, src, method="encode"))
    compiled = encode.lower(variables[name], src).compile()
    return lambda: compiled(variables[name], src)

  def decoder(name, src, length):
    compiled = decode_lib.make_decoder(bench.NeverEOS(built[name]), length)
    compiled = compiled.lower(variables[name], src).compile()
    produced = int(compiled(variables[name], src).lengths[0])
    if produced != length:
      raise RuntimeError(f"{name}: decoding stopped at {produced} of {length} tokens")
    return lambda: compiled(variables[name], src)

  for task, lengths in (("encode", s["encode_lengths"]), ("decode", s["decode_lengths"])):
    for length in lengths:
      todo = [name for name in configs if f"{name}/{task}/{length}" not in results]
      if not todo:
        continue
      src = random_batch(1, length, 1, s["vocab"])["src"]
      jobs = {name: (functools.partial(encoder, name, src) if task == "encode"
                     else functools.partial(decoder, name, src, length)) for name in todo}
      calls = {name: future.result() for name, future in _at_once(jobs).items()}
      seconds = side_by_side(calls, s["warmup"], s["latency_timed"])
      for name in todo:
        row = {"model": name, "task": task, "length": length,
               "seconds": statistics.median(seconds[name]), "rounds_s": seconds[name]}
        if task == "decode":
          row["ms_per_token"] = 1000 * row["seconds"] / length
        results[f"{name}/{task}/{length}"] = row
        per = f"{row['ms_per_token']:8.3f} ms/token" if task == "decode" else f"{1000 * row['seconds']:8.2f} ms"
        print(f"  (b) {name:19s} {task} n={length:4d}: {per}", flush=True)
      save()


# ---------------------------------------------------------------- (c) devices, one process per count


def device_worker(root: pathlib.Path, preset: str, num_devices: int) -> dict:
  """In a process that sees `num_devices` devices or more: throughput of each strategy."""
  import jax
  import ml_collections
  from attnjax import models, parallel
  from attnjax.speed import bench
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
      step = bench.stepper(runner.train_step, state, batch, jax.random.PRNGKey(0))
      step_s = timed(step, s["warmup"], s["timed"])
      out["rows"].append({"model": name, "strategy": strategy, "step_s": step_s,
                          "tokens_per_s": rows * length / step_s})
  return out


def real_devices() -> tuple[int, str]:
  """How many devices can run in parallel here, and why not more (a CPU's host devices share it)."""
  import jax
  if jax.devices()[0].platform == "cpu":
    return 1, "a CPU's forced host devices share its cores, so more of them cannot add compute"
  return jax.device_count(), ""


def device_scaling(s, root: pathlib.Path, preset: str, results: dict, save) -> None:
  count, why = real_devices()
  if count < 2:
    results.clear()
    results["skipped"] = f"one real device: {why}" if why else "one device"
    print(f"  (c) skipped: {results['skipped']}", flush=True)
    save()
    return
  for n in s["devices"]:
    if str(n) in results:
      continue
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")  # the parent holds memory too
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(common.REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "experiments.parallelism.run", "--preset", preset,
                           "--out", str(root.parent.resolve()), "--worker_devices", str(n)],
                          env=env, cwd=common.REPO, capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not lines:
      raise RuntimeError(f"the {n}-device process failed (exit {proc.returncode}): "
                         f"{proc.stderr.strip()[-2000:]}")
    results[str(n)] = json.loads(lines[-1][len("RESULT "):])
    for row in results[str(n)]["rows"]:
      print(f"  (c) {n} devices {row['model']:13s} {row['strategy']:4s}: {1000 * row['step_s']:9.1f} ms/step "
            f"{row['tokens_per_s']:10.0f} target tokens/s", flush=True)
    save()


# ---------------------------------------------------------------- main


def main(argv=None) -> int:
  p = common.parser("parallelism", __doc__, runs=False)
  p.add_argument("--worker_devices", type=int, default=0, help=argparse.SUPPRESS)
  args = common.parse(p, argv)
  if set(args.data) - {"data_dir"}:
    p.error("the parallelism experiment times random tokens of its own vocabulary and reads no "
            "corpus: drop the --config.data flags")
  s = SETTINGS[args.preset]
  root = common.runs_dir(args)
  if args.worker_devices:
    print("RESULT " + json.dumps(device_worker(root, args.preset, args.worker_devices)), flush=True)
    return 0
  root.mkdir(parents=True, exist_ok=True)
  start = time.perf_counter()
  import jax
  from attnjax.speed import bench
  configs = matched_configs(s)
  configs.update(work_matched(configs, s))
  sizes = {name: {"params": count_params(config.model, s["vocab"]), "model": config.model.to_dict(),
                  "train_flops_per_token": train_flops_per_token(config.model, s, s["work_length"])}
           for name, config in configs.items()}
  environment = {"platform": jax.devices()[0].platform, "device_kind": jax.devices()[0].device_kind,
                 "device": bench.device_name(jax.devices()[0]), "cpu_count": os.cpu_count(),
                 "jax": jax.__version__, "preset": args.preset,
                 "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()}}
  earlier = root / "models.json"  # a resumed run adds its wall time to the earlier runs'
  environment["wall_s"] = 0
  if earlier.exists():
    before = json.loads(earlier.read_text())["environment"]
    if before.get("device", environment["device"]) != environment["device"]:
      raise SystemExit(f"{root}: its results were measured on {before.get('device')}, this is "
                       f"{environment['device']}; resume there, or give another --out")
    environment["wall_s"] = before.get("wall_s", 0)
  earlier.write_text(json.dumps({"models": sizes, "environment": environment}, indent=2))
  print("parameters: " + ", ".join(f"{n} {sizes[n]['params']:,}" for n in sizes), flush=True)

  # The budget rows first: they are what a run cut short on an accelerator should still leave.
  for part, fn in (("budget", lambda r, save: fixed_budget(configs, s, r, save)),
                   ("latency", lambda r, save: latency(configs, s, r, save)),
                   ("devices", lambda r, save: device_scaling(s, root, args.preset, r, save))):
    path = root / f"{part}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    part_start = time.perf_counter()
    fn(results, lambda: path.write_text(json.dumps(results, indent=2)))
    print(f"  {part}: {time.perf_counter() - part_start:.0f} s", flush=True)
  seconds = time.perf_counter() - start
  meta = json.loads((root / "models.json").read_text())
  meta["environment"]["wall_s"] = round(meta["environment"]["wall_s"] + seconds)
  (root / "models.json").write_text(json.dumps(meta, indent=2))
  print(f"measured in {seconds:.0f} s", flush=True)
  from experiments.parallelism import report
  kept = report.results_dir(args.report_dir, args.preset)
  kept.mkdir(parents=True, exist_ok=True)
  for part in PARTS:
    if (root / f"{part}.json").exists():
      (kept / f"{part}.json").write_bytes((root / f"{part}.json").read_bytes())
  report.write(kept, args.preset, args.report_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
