"""The embedding table's gradient, alone: how each way of writing the lookup's backward pass
runs on this machine, at the token shapes of the parallelism sweep.

    python experiments/speed/embed_grad.py                          # 32k x 512 table, bfloat16
    python experiments/speed/embed_grad.py --shapes 2048x16 512x64 --vocab 8000 --dtype float32

A lookup's gradient is a scatter-add of the token rows' cotangents into a zero table. On an
H200 Transformer-base's step spent 36 ms in it at 2,048 sentences of 16 tokens against 2.3 ms
at 512 of 64, the same 32,768 tokens (`experiments/gpu/results/profile*.txt`); this script
found why (the sum's dtype; `experiments/gpu/results/README.md` has its figures). The ways:

  flax     Flax's `nn.Embed`: the table cast to the compute dtype, then `jnp.take` with the
           ids as they come ([B, T]); the scatter adds in the compute dtype
  rows     `attnjax.models.layers.Embed`: rows taken from the float32 table with the ids
           flattened to one axis, then cast; the scatter adds float32 rows along one axis
  rows_nd  as `rows` with the ids left [B, T] (flattening's share of the difference)
  flat     as `flax` with the ids flattened (the float32 scatter's share)
  sorted   rows' gradient summed over the ids sorted (`segment_sum`, indices_are_sorted)
  onehot   one_hot(ids) @ table in the compute dtype: a matrix product instead of a scatter

Every row of the ids' first column is BOS (id 1), as in a target batch; the others are random
ordinary ids. Prints one JSON line per (shape, way), the median of --steps timed calls of the
jitted forward-and-backward after --warmup, and a table. Each line also holds the largest
difference of its gradient from the first way's (`max_abs_diff`): rounding in float32; in
bfloat16, how coarse a bfloat16 sum of the repeated rows is.
"""

import argparse
import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from attnjax.models import layers


def _take(table, ids, dtype):
  return jnp.take(table.astype(dtype), ids, axis=0)


def _sorted(table, ids, dtype):
  @jax.custom_vjp
  def lookup(table):
    return layers.embed_rows(table, ids, dtype)

  def fwd(table):
    return lookup(table), None

  def bwd(_, g):
    flat = ids.reshape(-1)
    order = jnp.argsort(flat)
    rows = g.reshape(-1, g.shape[-1]).astype(table.dtype)[order]
    return (jax.ops.segment_sum(rows, flat[order], table.shape[0], indices_are_sorted=True),)

  lookup.defvjp(fwd, bwd)
  return lookup(table)


WAYS = {
    "flax": _take,
    "rows": layers.embed_rows,
    "rows_nd": lambda table, ids, dtype: jnp.take(table, ids, axis=0).astype(dtype),
    "flat": lambda table, ids, dtype: _take(table, ids.reshape(-1), dtype).reshape(ids.shape + table.shape[1:]),
    "sorted": _sorted,
    "onehot": lambda table, ids, dtype: jax.nn.one_hot(ids, table.shape[0], dtype=dtype) @ table.astype(dtype),
}


def _shape(text):
  try:
    batch, length = (int(n) for n in text.lower().split("x"))
  except ValueError:
    raise argparse.ArgumentTypeError(f"a shape is BATCHxLENGTH, e.g. 2048x16; got {text!r}") from None
  if batch < 1 or length < 1:
    raise argparse.ArgumentTypeError(f"a shape's batch and length are positive; got {text!r}")
  return batch, length


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--vocab", type=int, default=32000)
  parser.add_argument("--d-model", type=int, default=512)
  parser.add_argument("--shapes", type=_shape, nargs="+", default=[(2048, 16), (512, 64)],
                      help="token batches, BATCHxLENGTH (default: 2048x16 512x64)")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="bfloat16")
  parser.add_argument("--ways", nargs="+", choices=tuple(WAYS), default=tuple(WAYS))
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--steps", type=int, default=20)
  args = parser.parse_args(argv)
  if args.vocab < 5:
    parser.error(f"--vocab {args.vocab}: the ids 0-3 are reserved, so at least 5")
  for name, least in (("d_model", 1), ("steps", 1), ("warmup", 0)):
    if getattr(args, name) < least:
      parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: at least {least}")
  dtype = jnp.dtype(args.dtype)
  table = jax.random.normal(jax.random.key(0), (args.vocab, args.d_model), jnp.float32)
  rows = []
  for batch, length in args.shapes:
    rng = np.random.default_rng(0)
    ids = rng.integers(4, args.vocab, (batch, length), dtype=np.int32)
    ids[:, 0] = 1
    ids = jnp.asarray(ids)
    cot = jax.random.normal(jax.random.key(1), (batch, length, args.d_model), dtype)
    reference = None
    for way in args.ways:
      lookup = WAYS[way]
      grad = jax.jit(lambda table, ids, cot, lookup=lookup: jax.vjp(lambda t: lookup(t, ids, dtype), table)[1](cot)[0])
      out = grad(table, ids, cot)
      if reference is None:
        reference = out
      err = float(jnp.max(jnp.abs(out - reference)))
      for _ in range(args.warmup):
        grad(table, ids, cot).block_until_ready()
      times = []
      for _ in range(args.steps):
        start = time.perf_counter()
        grad(table, ids, cot).block_until_ready()
        times.append(time.perf_counter() - start)
      row = dict(way=way, batch=batch, length=length, vocab=args.vocab, d_model=args.d_model,
                 dtype=args.dtype, ms_median=1e3 * statistics.median(times), max_abs_diff=err,
                 device=jax.devices()[0].device_kind)
      rows.append(row)
      print(json.dumps(row), flush=True)
  print(f"\n{rows[0]['device']}: the table's gradient, {args.vocab} x {args.d_model}, {args.dtype}, "
        f"median of {args.steps} (ms)", file=sys.stderr)
  print(f"{'way':8}" + "".join(f"{f'{b}x{t}':>11}" for b, t in args.shapes), file=sys.stderr)
  for way in args.ways:
    ms = {(r["batch"], r["length"]): r["ms_median"] for r in rows if r["way"] == way}
    print(f"{way:8}" + "".join(f"{ms[s]:11.3f}" for s in args.shapes), file=sys.stderr)


if __name__ == "__main__":
  main()
