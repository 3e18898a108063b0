r"""The speed protocol: one model family, one task, one fixed batch, one JSON line.

    attnjax bench --model transformer --task train
    attnjax bench --model rnn_attention --task decode --beam 4
    attnjax bench --model minrnn_attention --cell gru --scan associative
    attnjax bench --model transformer --src-len 512 --tgt-len 512 --batch 8 --remat

The flags and their defaults are those of the PyTorch reference (`torch_reference.py`,
next to PROTOCOL.md in the peers folder), so the two commands with the same flags time
the same model at the same shapes. A step is what users run: `train.steps.train_step`
(forward, backward, clipping, Adam) jitted with the state donated, or `decode.make_decoder`
(greedy, or beam search with --beam). Compilation and --warmup steps come first, then the
median of --steps timed steps, each waiting for its result (`block_until_ready`).

Decoding runs all --tgt-len steps: the model's EOS logit is held at -1e9 (the models are
untrained, and the protocol decodes without an early stop).

Besides the protocol's fields the JSON carries the model FLOPs of a step (matrix products
counted as 2mnk, training = 3x forward), XLA's own count (`cost_analysis`, for a
cross-check; it counts a loop body once), the hardware limit (`peak_flops`: on a CPU the
measured rate of a 2048x2048 float32 matrix product, on a known accelerator its dense
bfloat16 peak), their ratio `mfu`, the compiled step's memory, and `huge_pages`: whether
the process ran with transparent huge pages (`attnjax/speed/hugepages.py`; the `attnjax` command
turns them on where it can, ATTNJAX_HUGEPAGES=0 turns them off).

Imports only jax, flax, optax, numpy, ml_collections and attnjax modules that import
nothing else, so it runs on a bare accelerator machine with PYTHONPATH=. .
"""

import argparse
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from attnjax.infer import decode as decode_lib
from attnjax.speed import hugepages
from attnjax import models
from attnjax import tokens
from attnjax.config import min_rnn_model, rnn_model, transformer_model
from attnjax.models import flops as flops_lib
from attnjax.infer.sampling import Sampling
from attnjax.train import state as state_lib
from attnjax.train import steps

MODELS = ("transformer", "rnn_attention", "rnn_seq2seq", "minrnn_attention", "minrnn")

# Dense bfloat16 peaks (FLOP/s, without sparsity) by `device_kind` substring.
ACCELERATOR_PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}

# Rematerialisation policies for --remat: what the backward pass may keep from the forward.
REMAT_POLICIES = {
    "nothing": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def parse_args(argv):
  p = argparse.ArgumentParser(prog="attnjax bench", description=__doc__.split("\n\n")[0])
  p.add_argument("--model", choices=MODELS, required=True)
  p.add_argument("--task", choices=["train", "decode"], default="train")
  p.add_argument("--score", choices=["dot", "general", "concat"], default="general",
                 help="Luong score of rnn_attention and minrnn_attention")
  p.add_argument("--cell", choices=["gru", "lstm"], default="gru",
                 help="minrnn models: minGRU or minLSTM (one layer; bidirectional encoder)")
  p.add_argument("--scan", choices=["auto", "associative", "sequential"], default="auto",
                 help="minrnn models: how time is walked (auto: sequential on a CPU only)")
  p.add_argument("--vocab", type=int, default=8000, help="source and target vocabulary each")
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--src-len", type=int, default=32)
  p.add_argument("--tgt-len", type=int, default=32)
  p.add_argument("--emb", type=int, default=256, help="RNN embedding size")
  p.add_argument("--hidden", type=int, default=256, help="RNN hidden size (both directions together)")
  p.add_argument("--d-model", type=int, default=256)
  p.add_argument("--heads", type=int, default=4)
  p.add_argument("--ff", type=int, default=1024)
  p.add_argument("--layers", type=int, default=3, help="Transformer encoder and decoder layers each")
  p.add_argument("--attention-dropout", type=float, default=0.1,
                 help="Transformer: dropout on the attention weights (the protocol's 0.1); 0 lets "
                      "training take the fused attention (cuDNN's kernel on a GPU in bfloat16)")
  p.add_argument("--encoder-impl", choices=["scan", "cudnn"], default="scan",
                 help="RNNs: the encoder as a scan of LSTM steps, or as jax.experimental.rnn's "
                      "LSTM (cuDNN's on a GPU; float32 only)")
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--threads", type=int, default=0,
                 help="CPU cores the process may use (the first N); 0 keeps them all")
  p.add_argument("--dtype", choices=list(models.DTYPES), default="float32",
                 help="compute dtype (parameters stay float32)")
  p.add_argument("--beam", type=int, default=1, help="decode: beam size (1 = greedy)")
  p.add_argument("--nbest", type=int, default=0, help="decode: also return the beam's K best (K <= --beam)")
  p.add_argument("--sampling", default=None, help="decode: draw instead of searching, topk:K or nucleus:P")
  p.add_argument("--remat", nargs="?", const="nothing", default=None, choices=list(REMAT_POLICIES),
                 help="train: recompute the forward pass's activations in the backward pass; "
                      "'nothing' (a bare --remat) keeps only the model's inputs, 'dots' keeps the "
                      "dense layers' outputs and recomputes attention maps, norms and activations")
  p.add_argument("--loss-chunk", type=int, default=0,
                 help="train: the output layer and loss over this many target tokens at a time "
                      "(train.loss_chunk), so no [tokens, vocabulary] logits are kept; 0 = all at once")
  p.add_argument("--prng-impl", choices=steps.PRNG_IMPLS, default=steps.PRNG_IMPLS[0],
                 help="train: the generator of the step's key, from which dropout's keys are "
                      "derived (train.prng_impl)")
  p.add_argument("--fused-residual", action="store_true",
                 help="Transformer: each sublayer's bias, dropout and residual in one "
                      "elementwise pass (the model's fused_residual)")
  args = p.parse_args(argv)
  if args.prng_impl != steps.PRNG_IMPLS[0] and args.task != "train":
    p.error("--prng-impl applies to --task train only")
  if args.fused_residual and args.model != "transformer":
    p.error(f"--fused-residual is for the Transformer, not --model={args.model}")
  if args.loss_chunk < 0:
    p.error(f"--loss-chunk={args.loss_chunk} must be 0 (off) or positive")
  if args.loss_chunk and args.task != "train":
    p.error("--loss-chunk applies to --task train only")
  for name in ("batch", "src_len", "tgt_len", "steps", "beam", "vocab"):
    if getattr(args, name) < 1:
      p.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be at least 1")
  if args.vocab <= tokens.FIRST_WORD_ID:
    p.error(f"--vocab={args.vocab} must exceed the {tokens.FIRST_WORD_ID} reserved token ids")
  if not 0.0 <= args.attention_dropout < 1.0:
    p.error(f"--attention-dropout={args.attention_dropout} must be in [0, 1)")
  if args.encoder_impl == "cudnn" and args.model not in ("rnn_attention", "rnn_seq2seq"):
    p.error(f"--encoder-impl=cudnn is for the LSTM RNNs, not --model={args.model}")
  if args.model != "transformer":  # the model section's own checks (e.g. cuDNN's LSTM: float32)
    try:
      models.build(model_config(args), args.vocab, args.vocab)
    except ValueError as err:
      p.error(str(err))
  if args.remat and args.task != "train":
    p.error("--remat applies to --task train only")
  if (args.nbest or args.sampling) and args.task != "decode":
    p.error("--nbest and --sampling apply to --task decode only")
  if not 0 <= args.nbest <= args.beam:
    p.error(f"--nbest={args.nbest} must be at most --beam={args.beam}")
  if args.sampling:
    if args.beam != 1 or args.nbest:
      p.error("--sampling draws one hypothesis: it takes neither --beam nor --nbest")
    try:
      Sampling.parse(args.sampling)
    except ValueError as err:
      p.error(str(err))
  return args


# ---------------------------------------------------------------- the model and the batch

def model_config(args) -> ml_collections.ConfigDict:
  """The `model` section that matches the reference's model of the same name."""
  if args.model == "transformer":  # torch.nn.Transformer: post-LN, dropout 0.1 everywhere
    cfg = transformer_model()
    cfg.update(dtype=args.dtype, d_model=args.d_model, num_heads=args.heads, d_ff=args.ff,
               num_encoder_layers=args.layers, num_decoder_layers=args.layers,
               attention_dropout=args.attention_dropout, norm="post", share_embeddings=False,
               max_len=max(cfg.max_len, args.src_len, args.tgt_len))
    return cfg
  if args.model.startswith("minrnn"):  # one layer, as the protocol's RNNs
    cfg = min_rnn_model(args.cell, "luong" if args.model == "minrnn_attention" else "none")
    cfg.update(dtype=args.dtype, embed_dim=args.emb, hidden_dim=args.hidden, num_layers=1,
               dropout=0.0, score=args.score, scan=args.scan)
    return cfg
  cfg = rnn_model(decoder="luong" if args.model == "rnn_attention" else "seq2seq", score=args.score)
  cfg.dtype = args.dtype
  cfg.embed_dim, cfg.hidden_dim = args.emb, args.hidden
  cfg.bidirectional = args.model == "rnn_attention"
  cfg.dropout = 0.0  # the reference's RNNs have none
  cfg.encoder_impl = args.encoder_impl
  return cfg


def train_config(args) -> ml_collections.ConfigDict:
  """Adam at 1e-4, no warmup, global-norm clipping 1.0, label smoothing 0.1 (the protocol's)."""
  return ml_collections.ConfigDict(dict(
      optimizer="adam", learning_rate=1e-4, weight_decay=0.0, schedule="constant",
      warmup_steps=0, num_steps=args.warmup + args.steps, clip_norm=1.0, label_smoothing=0.1,
      grad_accum_steps=1))


def make_batch(args):
  """One fixed batch of random ordinary tokens, no padding (`tokens.random_batch`)."""
  return tokens.random_batch(args.batch, args.src_len, args.tgt_len, args.vocab)


class NeverEOS:
  """`model` with EOS's logit held at -1e9 in `decode_step`, so decoding runs to max_len."""

  def __init__(self, model):
    self.model = model

  def apply(self, variables, *args, method=None, **kwargs):
    out = self.model.apply(variables, *args, method=method, **kwargs)
    if method != "decode_step":
      return out
    (logits, state), intermediates = out
    return (logits.at[:, tokens.EOS_ID].set(decode_lib.NEG_INF), state), intermediates


class Remat:
  """`model` whose teacher-forcing `apply` is wrapped in `jax.checkpoint` with `policy`.

  The backward pass then recomputes what the policy does not save instead of reading it
  from memory kept since the forward pass.
  """

  def __init__(self, model, policy):
    self.model, self.policy = model, policy

  def apply(self, variables, src, tgt_in, *, train, rngs=None):
    forward = lambda v, s, t, r: self.model.apply(v, s, t, train=train, rngs=r)
    return jax.checkpoint(forward, policy=self.policy)(variables, src, tgt_in, rngs)


# ---------------------------------------------------------------- FLOPs, peak, memory

def forward_flops(args) -> float:
  """Matrix-product FLOPs of one teacher-forced forward pass (`attnjax/models/flops.py`)."""
  return flops_lib.forward(model_config(args), args.vocab, args.batch, args.src_len, args.tgt_len)


def decode_flops(args) -> float:
  """Matrix-product FLOPs of decoding tgt_len tokens (greedy, or --beam hypotheses)."""
  return flops_lib.decode(model_config(args), args.vocab, args.batch, args.beam, args.src_len,
                          args.tgt_len)


def xla_flops(compiled) -> float | None:
  """XLA's FLOP count of the compiled step (a while-loop body counted once), if it gives one."""
  try:
    cost = compiled.cost_analysis()
  except Exception:  # noqa: BLE001 -- some backends have no cost model
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  return float(cost["flops"]) if cost and "flops" in cost else None


def compiled_memory(compiled) -> int | None:
  """Bytes the compiled step holds at once: arguments, outputs and temporaries, less aliasing."""
  try:
    m = compiled.memory_analysis()
  except Exception:  # noqa: BLE001
    return None
  if m is None:
    return None
  return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
             - m.alias_size_in_bytes)


def cpu_model(default: str = "cpu") -> str:
  """The CPU's model name from /proc/cpuinfo, or `default` where there is none."""
  try:
    with open("/proc/cpuinfo") as f:
      return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
  except (OSError, StopIteration):
    return default


def device_name(device) -> str:
  if device.platform != "cpu":
    return f"{device.platform}: {device.device_kind}"
  return f"cpu: {cpu_model()}, {len(os.sched_getaffinity(0))} cores"


@functools.cache
def peak_flops(device) -> tuple[float, str]:
  """The hardware limit and where it comes from: a known chip's spec, else a measured rate."""
  for kind, peak in ACCELERATOR_PEAKS.items():
    if kind in device.device_kind:
      return peak, f"{kind} dense bf16 spec"
  n, dtype = (2048, jnp.float32) if device.platform == "cpu" else (8192, jnp.bfloat16)
  x = jax.device_put(jnp.asarray(np.random.default_rng(0).random((n, n)), dtype), device)
  matmul = jax.jit(lambda x: x @ x)
  seconds, _ = time_steps(lambda: matmul(x), warmup=2, steps=10)
  return 2 * n ** 3 / float(np.median(seconds)), f"measured {n}x{n} {jnp.dtype(dtype).name} matmul"


# ---------------------------------------------------------------- timing

def time_steps(step, warmup: int, steps: int):
  """Run `step()` warmup times, then time `steps` calls, each waiting for its result.

  Returns (the timed calls' seconds, the last result). The one timing loop of the project's
  benchmarks and experiments.
  """
  out = None
  for _ in range(warmup):
    out = jax.block_until_ready(step())
  seconds = []
  for _ in range(steps):
    start = time.perf_counter()
    out = jax.block_until_ready(step())
    seconds.append(time.perf_counter() - start)
  return seconds, out


def stepper(train_step, state, *args):
  """`train_step(state, *args) -> (state, metrics)` as a call without arguments that carries
  the state it returns into the next call (so a donated state is never reused)."""
  holder = [state]

  def step():
    holder[0], metrics = train_step(holder[0], *args)
    return holder[0], metrics

  return step


def build_train(args, model, params, batch):
  """The compiled `train_step` (state donated, as the training loop runs it) and its state."""
  cfg = train_config(args)
  state = state_lib.TrainState.create(params, state_lib.make_optimizer(cfg))
  applied = Remat(model, REMAT_POLICIES[args.remat]) if args.remat else model
  step = functools.partial(steps.train_step, model=applied, label_smoothing=cfg.label_smoothing,
                           grad_accum_steps=cfg.grad_accum_steps, loss_chunk=args.loss_chunk)
  rng = steps.rng_key(1, args.prng_impl)
  compiled = jax.jit(step, donate_argnums=0).lower(state, batch, rng).compile()
  return compiled, stepper(compiled, state, batch, rng), lambda out: None


def build_decode(args, model, params, batch):
  """The compiled decoder (greedy or beam) that `attnjax translate` uses, on the batch's sources."""
  variables = {"params": params}
  sampling = Sampling.parse(args.sampling) if args.sampling else None
  decoder = decode_lib.make_decoder(NeverEOS(model), args.tgt_len, args.beam, sampling=sampling,
                                    nbest=args.nbest)
  compiled = decoder.lower(variables, batch["src"]).compile()

  def check(out):
    lengths = np.asarray(out.lengths)
    if not (lengths == args.tgt_len).all():
      raise RuntimeError(f"decoding stopped early (lengths {lengths.min()}..{lengths.max()}, "
                         f"expected {args.tgt_len}): the timing would not be the protocol's")

  return compiled, lambda: compiled(variables, batch["src"]), check


# ---------------------------------------------------------------- main

def _use_threads(threads: int) -> None:
  """Keep this process (and the XLA threads it starts later) on the first `threads` cores."""
  if threads > 0:
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores[:threads])


def setup(args):
  """The model, its initial parameters and the fixed batch on the first device."""
  model = models.build(model_config(args), args.vocab, args.vocab)
  if args.fused_residual:
    model = model.clone(fused_residual=True)
  params = models.init_params(model, seed=0)
  batch = {k: jax.device_put(v, jax.devices()[0]) for k, v in make_batch(args).items()}
  return model, params, batch


def run(args) -> dict:
  """The protocol for parsed flags; returns the JSON object's fields."""
  _use_threads(args.threads)
  device = jax.devices()[0]
  model, params, batch = setup(args)

  start = time.perf_counter()
  build = build_train if args.task == "train" else build_decode
  compiled, step, check = build(args, model, params, batch)
  compile_s = time.perf_counter() - start
  seconds, out = time_steps(step, args.warmup, args.steps)
  check(out)

  median, fastest = float(np.median(seconds)), float(min(seconds))
  flops = 3 * forward_flops(args) if args.task == "train" else decode_flops(args)
  peak, peak_source = peak_flops(device)
  memory = compiled_memory(compiled)
  stats = device.memory_stats() or {}
  return {
      "framework": "jax", "version": jax.__version__, "model": args.model, "task": args.task,
      "score": args.score if args.model in ("rnn_attention", "minrnn_attention") else None,
      "encoder_impl": args.encoder_impl if args.model in ("rnn_attention", "rnn_seq2seq") else None,
      "cell": args.cell if args.model.startswith("minrnn") else None,
      "scan": args.scan if args.model.startswith("minrnn") else None,
      "params": int(sum(np.size(x) for x in jax.tree.leaves(params))),
      "batch": args.batch, "src_len": args.src_len, "tgt_len": args.tgt_len,
      "threads": len(os.sched_getaffinity(0)), "step_s_median": median, "step_s_min": fastest,
      "tgt_tokens_per_s": args.batch * args.tgt_len / median,
      "dtype": args.dtype, "beam": args.beam if args.task == "decode" else None,
      "nbest": args.nbest or None, "sampling": args.sampling,
      "remat": args.remat, "loss_chunk": args.loss_chunk or None, "compile_s": compile_s,
      "prng_impl": args.prng_impl if args.task == "train" else None,
      "fused_residual": args.fused_residual or None,
      "model_flops_per_step": float(flops), "xla_flops_per_step": xla_flops(compiled),
      "peak_flops": peak, "peak_flops_source": peak_source, "mfu": flops / median / peak,
      "peak_memory_bytes": memory, "device_peak_memory_bytes": stats.get("peak_bytes_in_use"),
      "device": device_name(device), "huge_pages": hugepages.active(),
  }


def main(argv: list[str]) -> int:
  print(json.dumps(run(parse_args(argv))))
  return 0
