r"""The MFU ablation: Transformer-base's training step as `attnjax bench` times it, against the
same step with one lever changed, side by side; one JSON line per lever.

    python experiments/gpu/ablation.py --out ablation.jsonl -- --model transformer --task train \
        --dtype bfloat16 --attention-dropout 0 --d-model 512 --heads 8 --ff 2048 --layers 6 \
        --vocab 32000 --batch 512 --src-len 64 --tgt-len 64 --warmup 3
    python experiments/gpu/ablation.py --list

The flags after `--` are bench's (`attnjax/speed/bench.py`) and describe the baseline; a lever adds
bench flags to them (an option a user can train with too) or sets XLA flags (LEVERS). They aim
at what the H200 profile of the step found (results/README.md): 1,899 kernels a step with 4.8 ms
of 50.6 idle between them, about 4.6 ms of memory-bound passes over the float32 logits, and bias,
dropout and residual fusions in every layer.

  loss-chunk            the output layer and loss over --loss-chunk target tokens at a time
                        (train.loss_chunk): no float32 [tokens, vocabulary] logits
  fused-residual        each sublayer's bias, dropout and residual in one elementwise pass
                        (the Transformer's fused_residual)
  command-buffers-off   XLA's GPU command buffers (CUDA graphs) off: what they give the step now
  command-buffers-more  the step's conditional (the finite check) and loops (the chunked loss's)
                        recorded into command buffers too, so its graphs are not cut at them
  prng-unsafe-rbg       dropout's keys derived by XLA's RngBitGenerator (train.prng_impl)
  prng-rbg              ... by threefry on rbg's 4-word key (dropout's masks are threefry's)
  triton-gemm-off       matrix products through cuBLAS only, not XLA's Triton GEMM fusions
                        (the profile's gemm_fusion_dot kernels)

How they are side by side. A bench-flag lever is compiled in the process that holds the
baseline; XLA reads its flags once, when a process starts its backend, so an XLA-flag lever
runs in a second process started with them (XLA_FLAGS), holding the baseline's program compiled
under those flags. Either way both programs are compiled and warmed (bench's --warmup steps),
then --rounds rounds alternate, baseline first: each runs --steps-per-round steps of one program
(each step waiting for its result), the other program idle, so that a slow spell of the machine
falls on both. A round's figure is its mean step; the row gives the median and the range over
rounds for both, their ratio, target tokens/s and MFU (bench's model FLOPs and peak), and the
first step's loss of each (from the same parameters and batch: equal for a lever that leaves the
loss unchanged).

Each row is appended to --out when its lever is done; a lever with a row there for the same
device, JAX version and bench flags is skipped, so a run stopped by a time limit resumes where it
stopped. On a CPU the xla_gpu flags parse and change nothing: their levers run anyway (that checks
the two processes' side by side) and say so.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time


@dataclasses.dataclass(frozen=True)
class Lever:
  what: str
  bench_flags: tuple[str, ...] = ()  # added to the baseline's, in the baseline's process
  xla_flags: str = ""                # XLA_FLAGS of a second process


def levers(loss_chunk: int) -> dict[str, Lever]:
  """The levers, in the order they run: the likeliest gains first."""
  return {
      "loss-chunk": Lever(f"--loss-chunk {loss_chunk}", ("--loss-chunk", str(loss_chunk))),
      "fused-residual": Lever("--fused-residual", ("--fused-residual",)),
      "command-buffers-off": Lever("XLA command buffers off",
                                   xla_flags="--xla_gpu_enable_command_buffer="),
      "command-buffers-more": Lever("XLA command buffers also for conditionals and loops",
                                    xla_flags="--xla_gpu_enable_command_buffer=+CONDITIONAL,+WHILE"),
      "prng-unsafe-rbg": Lever("--prng-impl unsafe_rbg", ("--prng-impl", "unsafe_rbg")),
      "prng-rbg": Lever("--prng-impl rbg", ("--prng-impl", "rbg")),
      "triton-gemm-off": Lever("XLA's Triton GEMM fusions off",
                               xla_flags="--xla_gpu_enable_triton_gemm=false"),
  }


# ---------------------------------------------------------------- the worker (one process)

def worker(bench_flags: list[str]) -> int:
  """Holds compiled training steps by name and runs rounds of them, as the parent asks: one
  JSON command a line on stdin, one JSON answer a line on stdout (JAX's messages go to stderr)."""
  import jax
  import numpy as np
  from attnjax.speed import bench

  device = jax.devices()[0]
  programs = {}

  def answer(obj):
    print(json.dumps(obj), flush=True)

  def build(name, extra):
    args = bench.parse_args(bench_flags + extra)
    start = time.perf_counter()
    model, params, batch = bench.setup(args)
    _, step, _ = bench.build_train(args, model, params, batch)
    _, metrics = jax.block_until_ready(step())  # the first step, from the initial parameters
    first_loss = float(metrics["loss"] / metrics["tokens"])
    bench.time_steps(step, max(args.warmup - 1, 0), 0)
    programs[name] = step
    return {"compile_s": time.perf_counter() - start, "first_loss": first_loss,
            "model_flops_per_step": 3 * bench.forward_flops(args),
            "tgt_tokens_per_step": args.batch * args.tgt_len}

  answer({"device": bench.device_name(device), "version": jax.__version__,
          "platform": device.platform, "xla_flags": os.environ.get("XLA_FLAGS", "")})
  for line in sys.stdin:
    cmd = json.loads(line)
    try:
      if cmd["cmd"] == "build":
        answer(build(cmd["name"], cmd["flags"]))
      elif cmd["cmd"] == "round":
        seconds, _ = bench.time_steps(programs[cmd["name"]], 0, cmd["steps"])
        answer({"seconds": float(np.mean(seconds))})
      elif cmd["cmd"] == "drop":
        programs.pop(cmd["name"], None)
        answer({})
      elif cmd["cmd"] == "peak":
        peak, source = bench.peak_flops(device)
        answer({"peak_flops": peak, "peak_flops_source": source})
    except Exception as err:  # noqa: BLE001 -- said to the parent in one line (out of memory, a bad flag)
      answer({"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"})
  return 0


class WorkerError(Exception):
  """A worker's command failed (its message in one line), or the worker is gone."""


class Worker:
  """A worker process, optionally with XLA flags of its own, and its JSON conversation."""

  def __init__(self, bench_flags, xla_flags=""):
    env = dict(os.environ)
    if xla_flags:
      env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {xla_flags}".strip()
    script = os.path.abspath(__file__)
    self.proc = subprocess.Popen([sys.executable, script, "--worker", "--", *bench_flags],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    self.hello = self._read()

  def _read(self):
    line = self.proc.stdout.readline()
    if not line:
      raise WorkerError(f"its process exited (code {self.proc.wait()}); its messages are above")
    out = json.loads(line)
    if "error" in out:
      raise WorkerError(out["error"])
    return out

  def ask(self, **cmd):
    try:
      self.proc.stdin.write(json.dumps(cmd) + "\n")
      self.proc.stdin.flush()
    except BrokenPipeError:
      raise WorkerError(f"its process exited (code {self.proc.wait()}); its messages are above") from None
    return self._read()

  def close(self):
    if self.proc.poll() is None:
      try:
        self.proc.stdin.close()
      except BrokenPipeError:
        pass
      try:
        self.proc.wait(timeout=60)
      except subprocess.TimeoutExpired:
        self.proc.kill()


# ---------------------------------------------------------------- the parent

def side_by_side(a, a_name, b, b_name, rounds: int, steps: int):
  """Alternating rounds of two programs (a first); each round's mean step, per program."""
  times = ([], [])
  for _ in range(rounds):
    times[0].append(a.ask(cmd="round", name=a_name, steps=steps)["seconds"])
    times[1].append(b.ask(cmd="round", name=b_name, steps=steps)["seconds"])
  return times


def _ms(seconds):
  return {"median": 1e3 * statistics.median(seconds), "min": 1e3 * min(seconds),
          "max": 1e3 * max(seconds)}


def row(name, lever, hello, baseline, variant, times, peak, args, bench_flags, xla_flags) -> dict:
  base_s, var_s = statistics.median(times[0]), statistics.median(times[1])
  tokens, flops = baseline["tgt_tokens_per_step"], baseline["model_flops_per_step"]
  return {
      "lever": name, "change": lever.what, "device": hello["device"], "version": hello["version"],
      "bench_flags": bench_flags, "side_by_side": "two processes" if lever.xla_flags else "one process",
      "xla_flags": xla_flags, "rounds": args.rounds, "steps_per_round": args.steps_per_round,
      "baseline_ms": _ms(times[0]), "variant_ms": _ms(times[1]), "ratio": var_s / base_s,
      "baseline_tgt_tokens_per_s": tokens / base_s, "tgt_tokens_per_s": tokens / var_s,
      "model_flops_per_step": flops, **peak,
      "baseline_mfu": flops / base_s / peak["peak_flops"], "mfu": flops / var_s / peak["peak_flops"],
      "baseline_first_loss": baseline["first_loss"], "first_loss": variant["first_loss"],
      "compile_s": variant["compile_s"],
      "note": ("XLA:CPU ignores xla_gpu flags: the variant is the baseline's program"
               if lever.xla_flags and hello["platform"] == "cpu" else None),
  }


def done_levers(out: pathlib.Path, hello: dict, bench_flags: list[str]) -> set[str]:
  if not out.exists():
    return set()
  rows = [json.loads(l) for l in out.read_text().splitlines() if l.strip()]
  return {r["lever"] for r in rows if (r["device"], r["version"], r["bench_flags"])
          == (hello["device"], hello["version"], bench_flags)}


def parse_args(argv):
  p = argparse.ArgumentParser(
      prog="ablation.py", description=__doc__.split("\n\n")[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog="Levers: " + ", ".join(levers(0)) + ". Bench's flags follow `--`.")
  p.add_argument("--out", type=pathlib.Path, help="JSON lines, appended; levers already there are skipped")
  p.add_argument("--levers", default=",".join(levers(0)), help="comma-separated, in this order")
  p.add_argument("--rounds", type=int, default=10)
  p.add_argument("--steps-per-round", type=int, default=3)
  p.add_argument("--loss-chunk", type=int, default=8192, help="the loss-chunk lever's target tokens")
  p.add_argument("--list", action="store_true", help="print the levers and what each changes")
  p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("bench_flags", nargs="*", help="bench's flags for the baseline (after --)")
  args = p.parse_args(argv)
  if args.worker or args.list:
    return args
  table = levers(args.loss_chunk)
  unknown = [n for n in args.levers.split(",") if n not in table]
  if unknown:
    p.error(f"unknown lever(s) {', '.join(unknown)} in --levers; the levers: {', '.join(table)}")
  for name in ("rounds", "steps_per_round", "loss_chunk"):
    if getattr(args, name) < 1:
      p.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be at least 1")
  if args.out is None:
    p.error("--out is required: the JSON lines file the rows are appended to")
  from attnjax.speed import bench  # the baseline's flags checked here (bench's one-line error), not in a worker
  base = bench.parse_args(args.bench_flags)
  if (base.model, base.task) != ("transformer", "train"):
    p.error("the ablation times a training step of the Transformer: give bench --model transformer "
            "--task train after --")
  return args


def measure(name, lever, base, args):
  """One lever against the baseline held by `base`: (the variant's build answer, the rounds'
  times, the variant process's XLA flags)."""
  if not lever.xla_flags:
    variant = base.ask(cmd="build", name=name, flags=list(lever.bench_flags))
    times = side_by_side(base, "baseline", base, name, args.rounds, args.steps_per_round)
    base.ask(cmd="drop", name=name)
    return variant, times, base.hello["xla_flags"]
  if base.hello["platform"] == "cpu":
    print(f"[{name}] XLA:CPU ignores xla_gpu flags: timed anyway, as a check of the two "
          "processes' side by side", file=sys.stderr, flush=True)
  other = Worker(args.bench_flags, lever.xla_flags)
  try:
    variant = other.ask(cmd="build", name="baseline", flags=[])
    times = side_by_side(base, "baseline", other, "baseline", args.rounds, args.steps_per_round)
    return variant, times, other.hello["xla_flags"]
  finally:
    other.close()


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  if args.worker:
    return worker(args.bench_flags)
  table = levers(args.loss_chunk)
  if args.list:
    for name, lever in table.items():
      print(f"{name:21} {lever.what}" + (f" (XLA_FLAGS={lever.xla_flags})" if lever.xla_flags else ""))
    return 0
  status = 0
  base = Worker(args.bench_flags)
  try:
    todo = [n for n in args.levers.split(",")
            if n not in done_levers(args.out, base.hello, args.bench_flags)]
    if not todo:
      print(f"ablation: every lever asked for is in {args.out} already", flush=True)
      return 0
    baseline = base.ask(cmd="build", name="baseline", flags=[])
    peak = base.ask(cmd="peak")
    print(f"ablation on {base.hello['device']}: baseline compiled in {baseline['compile_s']:.0f} s; "
          f"levers {', '.join(todo)}", flush=True)
    for name in todo:
      lever = table[name]
      try:
        variant, times, xla_flags = measure(name, lever, base, args)
      except WorkerError as err:
        print(f"[{name}] failed: {err}", file=sys.stderr, flush=True)
        status = 1
        if base.proc.poll() is not None:
          break
        continue
      r = row(name, lever, base.hello, baseline, variant, times, peak, args, args.bench_flags, xla_flags)
      with open(args.out, "a") as f:
        f.write(json.dumps(r) + "\n")
      print(f"[{name}] {r['baseline_ms']['median']:.2f} -> {r['variant_ms']['median']:.2f} ms a step "
            f"({r['ratio']:.3f}x), MFU {r['baseline_mfu']:.1%} -> {r['mfu']:.1%}", flush=True)
  except WorkerError as err:
    print(f"ablation: the baseline's process failed: {err}", file=sys.stderr, flush=True)
    return 1
  finally:
    base.close()
  return status


if __name__ == "__main__":
  sys.exit(main())
