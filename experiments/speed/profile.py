"""Where a step's time goes: the JAX profiler over a few `attnjax bench` steps.

    python experiments/speed/profile.py --model rnn_seq2seq            # a training step
    python experiments/speed/profile.py --model transformer --task decode
    python experiments/speed/profile.py --model transformer --hlo step.hlo   # and the compiled HLO

Prints (1) the ops that took the most time, summed over XLA's worker threads, and (2) a
timeline of the last step in buckets: how busy each worker thread was and which ops ran.
The timeline shows what the totals hide: phases where one thread works and the other waits,
and gaps where a library kernel runs outside XLA's own trace events. Op names are those of
the compiled HLO (`--hlo` writes it), e.g. `ynn_fusion.31` is a matrix product run by
YNNPACK. A plain `dot` is handed to Eigen, which runs it asynchronously: its event lasts
only as long as the hand-off, its work shows as an apparently idle thread, and whatever runs
beside it looks slower than it is. Takes the flags of `attnjax bench` for the shapes.

On a GPU it reads the device's kernels instead: per step, how long a kernel was running
and how long the GPU sat idle (against the host's clock: the difference is time spent
waiting for the host), kernel time by part of the model (matrix products apart; parts come
from the JAX name of the op at the root of each fused kernel, in the compiled HLO), and the
longest kernels. `--trace-out FILE` keeps the raw trace (an `.xplane.pb`, which TensorBoard
also reads); `--from-trace FILE --hlo STEP.hlo` summarises a saved one on any machine.
"""

import argparse
import collections
import glob
import os
import re
import shutil
import sys
import tempfile

import jax

from attnjax.speed import bench


def _trace_file(trace_dir):
  return glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[0]


def _events(path, planes=lambda name: True):
  """(line, start ns, duration ns, name) for every event of the chosen planes in the trace."""
  from jax._src.profiler import ProfileData  # the reader of the profiler's xplane files
  data = ProfileData.from_file(path)
  return [(line.name, event.start_ns, event.duration_ns, event.name)
          for plane in data.planes if planes(plane.name)
          for line in plane.lines for event in line.events]


def _is_gpu(plane_name):
  return plane_name.startswith("/device:GPU:0")


# Parts of a model step, recognised in an HLO op's `op_name` metadata (its JAX name stack),
# first match wins: the loss comes after attention, whose softmax also takes a reduce_max.
PARTS = (("optimizer", ("apply_gradients", "adam", "global_norm", "isfinite", "cond/")),
         ("output layer", ("_logits", "projection")),
         ("attention's projections", ("/qkv/", "/query/", "/kv/", "/out/")),
         ("attention", ("attention", "_attend")),
         ("loss", ("log_softmax", "take_along_axis", "cross_entropy", "reduce_max")),
         ("feed-forward", ("feed_forward",)),
         ("layernorm", ("norms", "layernorm")),
         ("dropout", ("drop",)),
         ("embeddings", ("embed",)))


def _part(op_name):
  for part, keys in PARTS:
    if any(key in op_name.lower() for key in keys):
      return part
  return "other" if op_name else "unnamed"


def _is_matmul(kernel):
  """cuBLAS's kernels (nvjet, xmma, cutlass) and XLA's Triton matrix-product fusions."""
  return kernel.startswith(("nvjet", "sm90_xmma", "sm80_xmma", "cutlass")) or "gemm" in kernel


def _op_names(hlo_text):
  """HLO instruction name -> its op_name metadata, from the compiled module's text."""
  return {m.group(1): m.group(2) for m in re.finditer(
      r'^\s*(?:ROOT )?%([\w.\-]+) = [^\n]*?op_name="([^"]*)"', hlo_text, re.M)}


def device_summary(path, steps, count, wall_ms=None, hlo_text=None):
  """Lines describing the first GPU's kernels in a trace of `steps` steps: busy and idle time,
  time by part of the model (matrix products apart), and the longest kernels.

  A kernel is named after the HLO op it runs ('loop_add_fusion_12' for 'loop_add_fusion.12');
  with the compiled module's text, the op's JAX name says which part of the model it is.
  """
  kernels = sorted((start, duration, name) for line, start, duration, name
                   in _events(path, _is_gpu) if line.startswith("Stream"))
  if not kernels:
    return ["no kernels on /device:GPU:0 in the trace"]
  names = _op_names(hlo_text) if hlo_text else {}
  op_name = lambda kernel: names.get(re.sub(r"_(\d+)$", r".\1", kernel), names.get(kernel, ""))
  intervals = [(start, start + duration) for start, duration, _ in kernels]
  first, last = intervals[0][0], max(end for _, end in intervals)
  busy = _covered(intervals, first, last) / 1e6 / steps
  span = (last - first) / 1e6 / steps
  out = [f"GPU: {len(kernels) // steps} kernels a step, busy {busy:.2f} ms a step, idle "
         f"{span - busy:.2f} ms a step between the first kernel and the last"
         + (f"; {wall_ms:.2f} ms a step on the host's clock" if wall_ms else "")]
  parts, longest = collections.Counter(), collections.Counter()
  for _, duration, kernel in kernels:
    ms = duration / 1e6 / steps
    parts[("matrix products" if _is_matmul(kernel) else "other kernels",
           _part(op_name(kernel)) if names else "")] += ms
    longest[kernel] += ms
  total = sum(parts.values())
  out.append("kernel time by part of the step (ms a step):")
  out += [f"  {ms:8.2f}  {100 * ms / total:5.1f}%  {kind}{': ' + part if part else ''}"
          for (kind, part), ms in parts.most_common()]
  out.append(f"the {count} longest kernels (ms a step), with their JAX op:")
  out += [f"  {ms:8.3f}  {kernel}  {op_name(kernel)[:100]}" for kernel, ms in longest.most_common(count)]
  return out


def _is_op(event):
  """An XLA op run by a worker thread (library and executor events have '::' in their names)."""
  thread, _, _, name = event
  return thread.startswith("tf_XLAEigen") and "::" not in name


def _is_work(event):
  """Anything a worker thread did: XLA ops and the thread-pool tasks of library kernels."""
  thread, _, _, name = event
  return thread.startswith("tf_XLAEigen") and not name.startswith("ThunkExecutor")


def top_ops(events, steps, count):
  """The `count` ops with the most time per step, all worker threads together."""
  total = collections.Counter()
  for event in filter(_is_op, events):
    total[event[3]] += event[2] / 1e6 / steps
  return total.most_common(count)


def _covered(intervals, lo, hi):
  """Length of the union of (start, end) intervals within [lo, hi)."""
  covered, reach = 0.0, lo
  for s, e in sorted(intervals):
    s, e = max(s, reach), min(e, hi)
    if e > s:
      covered += e - s
      reach = e
  return covered


def timeline(events, bucket_ms):
  """Rows (start ms, busy fraction per thread, top ops) over the last step in which the worker
  threads did anything (a small step can run wholly on the calling thread)."""
  steps = [e for e in events if e[3].startswith("ThunkExecutor::Execute (wait")]
  for step in reversed(steps):
    start, end = step[1], step[1] + step[2]
    work = [e for e in events if _is_work(e) and start <= e[1] < end]
    if work:
      break
  threads = sorted({e[0] for e in work})
  width = bucket_ms * 1e6
  rows, lo = [], start
  while lo < end:
    hi = lo + width
    busy, names = [], collections.Counter()
    for thread in threads:
      mine = [(s, s + d) for t, s, d, _ in work if t == thread and s < hi and s + d > lo]
      busy.append(_covered(mine, lo, hi) / width)
    for event in filter(_is_op, work):
      overlap = min(event[1] + event[2], hi) - max(event[1], lo)
      if overlap > 0:
        names[event[3]] += overlap
    rows.append(((lo - start) / 1e6, busy, names.most_common(3)))
    lo = hi
  return step[2] / 1e6, threads, rows


def main(argv=None):
  p = argparse.ArgumentParser(
      description=__doc__.splitlines()[0],
      epilog="Every other flag goes to `attnjax bench`: --model (required), --task, --beam, "
             "--batch, --src-len, --tgt-len, ... (see `attnjax bench --help`).")
  p.add_argument("--profile-steps", type=int, default=3, help="steps traced after the warm-up")
  p.add_argument("--bucket-ms", type=float, default=20.0, help="timeline resolution")
  p.add_argument("--top", type=int, default=25, help="ops listed by total time")
  p.add_argument("--hlo", help="also write the compiled step's HLO text here")
  p.add_argument("--trace-out", help="also copy the raw trace (.xplane.pb) to this file")
  p.add_argument("--from-trace", metavar="XPLANE",
                 help="GPU: summarise this saved trace (of --profile-steps steps) instead of "
                      "running; --hlo then names the step's saved HLO text to read")
  ours, rest = p.parse_known_args(argv)
  if ours.from_trace:
    for path in filter(None, (ours.from_trace, ours.hlo)):
      if not os.path.isfile(path):
        p.error(f"no such file: {path}")
    hlo_text = open(ours.hlo).read() if ours.hlo else None
    print("\n".join(device_summary(ours.from_trace, ours.profile_steps, ours.top, None, hlo_text)))
    return 0
  args = bench.parse_args(rest)
  backend = jax.default_backend()
  if backend not in ("cpu", "gpu"):
    p.error(f"this reads CPU worker threads' or a GPU's trace events; the default backend is "
            f"{backend!r} (use the JAX profiler's own viewer there)")

  model, params, batch = bench.setup(args)
  compiled, step, _ = (bench.build_train if args.task == "train" else bench.build_decode)(
      args, model, params, batch)
  hlo_text = compiled.as_text() if ours.hlo or backend == "gpu" else None
  if ours.hlo:
    with open(ours.hlo, "w") as f:
      f.write(hlo_text)
  bench.time_steps(step, max(args.warmup, 1), 0)
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir):
      seconds, _ = bench.time_steps(step, 0, ours.profile_steps)
      wall_ms = sum(seconds) * 1e3 / ours.profile_steps
    if ours.trace_out:
      shutil.copyfile(_trace_file(trace_dir), ours.trace_out)
    if backend == "gpu":
      print("\n".join(device_summary(_trace_file(trace_dir), ours.profile_steps, ours.top,
                                      wall_ms, hlo_text)))
      return 0
    events = _events(_trace_file(trace_dir))

  print(f"ops by time per step (ms, {ours.profile_steps} steps, worker threads summed):")
  for name, ms in top_ops(events, ours.profile_steps, ours.top):
    print(f"  {ms:8.2f}  {name}")
  step_ms, threads, rows = timeline(events, ours.bucket_ms)
  print(f"\nlast step: {step_ms:.0f} ms; busy share of each of {len(threads)} worker threads "
        f"per {ours.bucket_ms:g} ms, and the ops that ran most:")
  for at, busy, names in rows:
    shares = " ".join(f"{100 * b:4.0f}%" for b in busy)
    print(f"  {at:6.0f} ms {shares}  " + ", ".join(f"{n} {v / 1e6:.0f}" for n, v in names))
  return 0


if __name__ == "__main__":
  from attnjax.speed import hugepages
  hugepages.reexec_if_wanted()  # as the `attnjax` command does, so the profile is of that
  sys.exit(main())
