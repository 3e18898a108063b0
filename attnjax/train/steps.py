"""Pure training and evaluation steps: `train_step(state, batch, rng) -> (state, metrics)`.

No I/O and no devices here. Metrics are sums (loss, tokens, correct tokens), so the
parallel wrappers only add them up across devices; `axis_name` names the pmap axis when
there is one, and under `jax.jit` with a mesh it stays None (the compiler sums for us).
"""

import functools

import jax
import jax.numpy as jnp
import optax

from attnjax.models import loss
from attnjax.tokens import PAD_ID
from attnjax.train.state import TrainState


# The pseudo-random number generators JAX offers for the step's key (`train.prng_impl`).
PRNG_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")


def rng_key(seed: int, impl: str = "threefry2x32") -> jax.Array:
  """The key `train_step` takes: a typed key of JAX's `impl` generator.

  Dropout's masks hash the words of per-layer keys (`layers.hashed_bits`); the generator
  decides how those keys are derived from this one each step (Flax's `make_rng` folds in
  each layer's name and call count, `train_step` the step number): threefry2x32 (JAX's
  default) by its hash rounds; rbg by threefry on each half of a 4-word key whose halves are
  the seed's threefry key, so that the masks are threefry's and only the cost differs;
  unsafe_rbg by XLA's RngBitGenerator, without JAX's guarantee of independent streams. The
  same seed and generator give the same keys, so the same updates.
  """
  if impl not in PRNG_IMPLS:
    raise ValueError(f"prng_impl={impl!r} is not one of {', '.join(PRNG_IMPLS)}")
  return jax.random.key(seed, impl=impl)


def _psum(x, axis_name):
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def train_step(state: TrainState, batch, rng, *, model, label_smoothing: float = 0.0,
               grad_accum_steps: int = 1, axis_name=None, loss_chunk: int = 0):
  """One optimizer update on one global batch; returns (new_state, summed metrics).

  The loss is the token-level mean over the whole global batch (all devices, all
  accumulation micro-batches), so every strategy and device count computes the same
  update. A non-finite loss or gradient leaves the state unchanged and sets
  `metrics["nonfinite"]`; the loop decides whether to stop or go on.
  """
  rng = jax.random.fold_in(rng, state.step)
  total_tokens = _psum(jnp.sum(batch["tgt_out"] != PAD_ID).astype(jnp.float32), axis_name)

  def grads_of(micro_batch, micro_rng):
    def loss_fn(params):
      terms = loss.loss_sums(model, params, micro_batch, micro_rng, label_smoothing, train=True,
                             chunk=loss_chunk)
      return terms["loss"] / total_tokens, terms
    (_, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return grads, terms

  if grad_accum_steps == 1:
    grads, metrics = grads_of(batch, rng)
  else:
    micro = jax.tree.map(
        lambda x: x.reshape((grad_accum_steps, x.shape[0] // grad_accum_steps) + x.shape[1:]),
        batch)
    rngs = jax.random.split(rng, grad_accum_steps)

    def accumulate(carry, xs):
      grads, terms = grads_of(*xs)
      return jax.tree.map(jnp.add, carry, (grads, terms)), None

    zeros = jax.tree.map(jnp.zeros_like, jax.eval_shape(grads_of, jax.tree.map(lambda x: x[0], micro), rngs[0]))
    (grads, metrics), _ = jax.lax.scan(accumulate, zeros, (micro, rngs))

  grads = _psum(grads, axis_name)
  metrics = _psum(metrics, axis_name)
  finite = jnp.isfinite(metrics["loss"]) & jnp.all(
      jnp.array([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
  # A branch, not a select of new against old: with the state donated, XLA can then update
  # it in place instead of first copying the optimizer state (3-9% of a step on the CPU).
  new_state = jax.lax.cond(finite, lambda s: s.apply_gradients(grads), lambda s: s, state)
  # The step counter advances either way, so the data and the randomness move on.
  new_state = new_state.replace(step=state.step + 1)
  metrics["nonfinite"] = 1.0 - finite.astype(jnp.float32)
  metrics["grad_norm"] = optax.tree.norm(grads)
  return new_state, metrics


def eval_step(params, batch, *, model, label_smoothing: float = 0.0, axis_name=None, loss_chunk: int = 0):
  """Summed loss terms of a batch, with padding rows (weight 0) left out."""
  return _psum(loss.eval_sums(params, batch, model=model, label_smoothing=label_smoothing,
                              chunk=loss_chunk), axis_name)


def bind(model, train_cfg, axis_name=None):
  """The two steps with the model and the config's constants fixed."""
  chunk = train_cfg.get("loss_chunk", 0)  # a config saved before the field existed: off
  return (functools.partial(train_step, model=model, label_smoothing=train_cfg.label_smoothing,
                            grad_accum_steps=train_cfg.grad_accum_steps, axis_name=axis_name,
                            loss_chunk=chunk),
          functools.partial(eval_step, model=model, label_smoothing=train_cfg.label_smoothing,
                            axis_name=axis_name, loss_chunk=chunk))
