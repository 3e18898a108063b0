r"""The Flax WMT example's Transformer training step, timed with `attnjax bench`'s protocol at
the same shapes, so that the two print comparable JSON lines.

    python experiments/gpu/flax_wmt.py --example third_party/flax_wmt [bench's shape flags]

`--example` is a folder holding the example's own `models.py` and `train.py` (google/flax,
`examples/wmt`), brought in from its public source and never committed (`third_party/` is
ignored; `experiments/gpu/run.sh` carries it to the accelerator). Their step runs as the
example runs it: its `train_step` (its loss, label smoothing 0.1, AdamW) under `jax.pmap` over
one device with the state donated. Its input pipeline, BLEU and TensorBoard writers are not
needed and their imports are stubbed. The batch is random ids without padding, as `attnjax
bench`'s; the FLOP count for MFU is the same formula as bench's.
"""

import argparse
import functools
import importlib
import importlib.machinery
import json
import pathlib
import sys
import time
import types

import numpy as np


class _Absent(types.ModuleType):
  """A stand-in module: any attribute is another stand-in (for annotations such as
  `tf.data.Dataset` that the example's functions carry). It has a module spec, so that code
  asking `importlib.util.find_spec` about it (JAX's persistent compilation cache does) gets an
  answer rather than a ValueError."""

  def __init__(self, name):
    super().__init__(name)
    self.__spec__ = importlib.machinery.ModuleSpec(name, None)

  def __getattr__(self, name):
    if name.startswith("__"):
      raise AttributeError(name)
    return _Absent(f"{self.__name__}.{name}")


def _stub_unneeded_imports():
  """`train.py` imports TensorFlow, CLU and the example's data and BLEU modules at the top; the
  training step uses none of them. Flax's own modules that look for TensorFlow are imported
  first, so that they find it absent."""
  importlib.import_module("flax.training.checkpoints")
  for name in ("tensorflow", "clu", "clu.metric_writers", "clu.periodic_actions", "input_pipeline",
               "bleu", "decode"):
    sys.modules.setdefault(name, _Absent(name))
  sys.modules["clu"].metric_writers = sys.modules["clu.metric_writers"]
  sys.modules["clu"].periodic_actions = sys.modules["clu.periodic_actions"]


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--example", default="third_party/flax_wmt",
                 help="folder with the Flax WMT example's models.py and train.py")
  p.add_argument("--vocab", type=int, default=32000)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--src-len", type=int, default=32)
  p.add_argument("--tgt-len", type=int, default=32)
  p.add_argument("--d-model", type=int, default=512)
  p.add_argument("--heads", type=int, default=8)
  p.add_argument("--ff", type=int, default=2048)
  p.add_argument("--layers", type=int, default=6)
  p.add_argument("--attention-dropout", type=float, default=0.0,
                 help="the example's attention_dropout_rate (0, as bench's fused runs)")
  p.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16")
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--steps", type=int, default=10)
  args = p.parse_args(argv)
  folder = pathlib.Path(args.example)
  missing = [f for f in ("models.py", "train.py") if not (folder / f).is_file()]
  if missing:
    p.error(f"--example={folder}: no {', '.join(missing)} there; copy google/flax's examples/wmt "
            "into it (it is never committed)")
  return args


def _say(stage: str, since: float) -> None:
  """Where the run is, on stderr: a run stopped at its limit says which stage it reached."""
  print(f"[flax-wmt] {stage} ({time.perf_counter() - since:.0f} s)", file=sys.stderr, flush=True)


def run(args) -> dict:
  began = time.perf_counter()
  import jax
  import jax.numpy as jnp
  from attnjax import tokens
  from attnjax.speed import bench
  sys.path.insert(0, str(pathlib.Path(args.example).resolve()))
  _stub_unneeded_imports()
  models = importlib.import_module("models")
  example = importlib.import_module("train")
  import optax
  _say(f"imported the example, jax {jax.__version__} on {jax.devices()[0].device_kind}", began)

  dtype = jnp.bfloat16 if args.dtype == "bfloat16" else jnp.float32
  config = models.TransformerConfig(
      vocab_size=args.vocab, output_vocab_size=args.vocab, share_embeddings=False,
      logits_via_embedding=False, dtype=dtype, emb_dim=args.d_model, num_heads=args.heads,
      num_layers=args.layers, qkv_dim=args.d_model, mlp_dim=args.ff,
      max_len=max(args.src_len, args.tgt_len), dropout_rate=0.1,
      attention_dropout_rate=args.attention_dropout, deterministic=False, decode=False)
  batch = tokens.random_batch(args.batch, args.src_len, args.tgt_len, args.vocab)
  inputs, targets = batch["src"], batch["tgt_out"]  # the example shifts the targets right itself
  model = models.Transformer(config.replace(deterministic=True))
  params = jax.jit(model.init)(jax.random.key(0), inputs[:1], targets[:1])["params"]
  _say("initialised the parameters", began)
  schedule = example.create_learning_rate_schedule(learning_rate=0.0625, warmup_steps=1000)
  state = example.TrainState.create(apply_fn=model.apply, params=params, dynamic_scale=None,
                                    tx=optax.adamw(schedule, b1=0.9, b2=0.98, eps=1e-9, weight_decay=0.0))
  p_train_step = jax.pmap(functools.partial(example.train_step, config=config, learning_rate_fn=schedule,
                                            label_smoothing=0.1),
                          axis_name="batch", donate_argnums=(0,), devices=jax.local_devices()[:1])
  state = jax.tree.map(lambda x: jnp.asarray(x)[None], state)  # replicated over the one device
  device_batch = {"inputs": jnp.asarray(inputs)[None], "targets": jnp.asarray(targets)[None]}
  rngs = jax.random.split(jax.random.key(1), 1)

  start = time.perf_counter()
  step = bench.stepper(lambda s: p_train_step(s, device_batch, dropout_rng=rngs), state)
  jax.block_until_ready(step())  # the first call compiles
  compile_s = time.perf_counter() - start
  _say(f"compiled the training step in {compile_s:.0f} s", began)
  seconds, _ = bench.time_steps(step, args.warmup, args.steps)
  median = float(np.median(seconds))
  shape = argparse.Namespace(model="transformer", vocab=args.vocab, batch=args.batch, src_len=args.src_len,
                             tgt_len=args.tgt_len, d_model=args.d_model, heads=args.heads, ff=args.ff,
                             layers=args.layers, dtype=args.dtype, attention_dropout=args.attention_dropout)
  flops = 3 * bench.forward_flops(shape)
  device = jax.devices()[0]
  peak, peak_source = bench.peak_flops(device)
  return {
      "framework": "flax-wmt-example", "version": jax.__version__, "model": "transformer", "task": "train",
      "params": int(sum(np.size(x) for x in jax.tree.leaves(params))), "batch": args.batch,
      "src_len": args.src_len, "tgt_len": args.tgt_len, "dtype": args.dtype,
      "step_s_median": median, "step_s_min": float(min(seconds)),
      "tgt_tokens_per_s": args.batch * args.tgt_len / median, "compile_s": compile_s,
      "model_flops_per_step": float(flops), "peak_flops": peak, "peak_flops_source": peak_source,
      "mfu": flops / median / peak, "device": bench.device_name(device), "beam": None,
      "peak_memory_bytes": None, "device_peak_memory_bytes": (device.memory_stats() or {}).get("peak_bytes_in_use"),
  }


def main(argv=None) -> int:
  print(json.dumps(run(parse_args(argv))), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
