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
"""

import argparse
import collections
import glob
import sys
import tempfile

import jax

from attnjax import bench


def _events(trace_dir):
  """(thread, start ns, duration ns, name) for every event the profiler recorded."""
  from jax._src.profiler import ProfileData  # the reader of the profiler's xplane files
  path = glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[0]
  data = ProfileData.from_file(path)
  return [(line.name, event.start_ns, event.duration_ns, event.name)
          for plane in data.planes for line in plane.lines for event in line.events]


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
  """Rows (start ms, busy fraction per thread, top ops) over the last step."""
  step = [e for e in events if e[3].startswith("ThunkExecutor::Execute (wait")][-1]
  start, end = step[1], step[1] + step[2]
  work = [e for e in events if _is_work(e) and start <= e[1] < end]
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
  ours, rest = p.parse_known_args(argv)
  args = bench.parse_args(rest)
  if jax.default_backend() != "cpu":
    p.error(f"this reads the trace events of XLA:CPU's worker threads; the default backend is "
            f"{jax.default_backend()!r} (run with JAX_PLATFORMS=cpu, or use the JAX profiler's "
            f"own viewer on an accelerator)")

  model, params, batch = bench.setup(args)
  compiled, step, _ = (bench.build_train if args.task == "train" else bench.build_decode)(
      args, model, params, batch)
  if ours.hlo:
    with open(ours.hlo, "w") as f:
      f.write(compiled.as_text())
  for _ in range(max(args.warmup, 1)):
    jax.block_until_ready(step())
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir):
      for _ in range(ours.profile_steps):
        jax.block_until_ready(step())
    events = _events(trace_dir)

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
  from attnjax import hugepages
  hugepages.reexec_if_wanted()  # as the `attnjax` command does, so the profile is of that
  sys.exit(main())
