"""Pure training and evaluation steps: `train_step(state, batch, rng) -> (state, metrics)`.

No I/O and no devices here. Metrics are sums (loss, tokens, correct tokens), so the
parallel wrappers only add them up across devices; `axis_name` names the pmap axis when
there is one, and under `jax.jit` with a mesh it stays None (the compiler sums for us).
"""

import functools

import jax
import jax.numpy as jnp
import optax

from attnjax.tokens import PAD_ID
from attnjax.train.state import TrainState


def _cross_entropy_terms(logits, labels, label_smoothing):
  """(loss, nll, log-sum-exp), each [B, T], from logits [B, T, V]."""
  z = logits.astype(jnp.float32)
  top = jnp.max(z, axis=-1)
  lse = top + jnp.log(jnp.sum(jnp.exp(z - top[..., None]), axis=-1))
  nll = lse - jnp.take_along_axis(z, labels[..., None], axis=-1)[..., 0]
  if label_smoothing == 0.0:
    return nll, nll, lse
  smooth = lse - jnp.mean(z, axis=-1)  # -mean_v log p_v
  return (1.0 - label_smoothing) * nll + label_smoothing * smooth, nll, lse


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def cross_entropy(logits, labels, label_smoothing: float):
  """Per-token label-smoothed cross-entropy and plain negative log-likelihood, both [B, T].

  loss = (1 - eps) * nll + eps * mean_v(-log p_v), with log p = log_softmax(logits), in
  float32. The gradient is written out: one elementwise pass over the [B, T, V] logits
  (softmax scaled, less the smoothing's eps / V), then a scatter-add of the label's term
  into that pass's output, in place. Autodiff of log_softmax instead materialised a
  [B, T, V] array of eps / V, scattered the labels into it and reduced over it again
  (`experiments/speed/README.md` has the measurements).
  """
  loss, nll, _ = _cross_entropy_terms(logits, labels, label_smoothing)
  return loss, nll


def _cross_entropy_fwd(logits, labels, label_smoothing):
  loss, nll, lse = _cross_entropy_terms(logits, labels, label_smoothing)
  return (loss, nll), (logits, labels, lse)


def _cross_entropy_bwd(label_smoothing, residuals, cotangents):
  """d/dz of g_loss * loss + g_nll * nll
  = (g_loss + g_nll) softmax(z) - eps / V * g_loss - ((1 - eps) g_loss + g_nll) onehot(label)."""
  logits, labels, lse = residuals
  g_loss, g_nll = cotangents
  z = logits.astype(jnp.float32)
  eps, vocab = label_smoothing, z.shape[-1]
  grad = (g_loss + g_nll)[..., None] * jnp.exp(z - lse[..., None]) - (eps / vocab) * g_loss[..., None]
  # One scatter-add per row, vmapped over the leading axes: a scatter with batch dimensions,
  # which a batch sharded over devices keeps local (a flattened [B*T, V] scatter made XLA
  # all-gather its indices and updates first).
  add_at_label = lambda row, label, value: row.at[label].add(value)
  for _ in range(labels.ndim):
    add_at_label = jax.vmap(add_at_label)
  grad = add_at_label(grad, labels, -((1.0 - eps) * g_loss + g_nll))
  return grad.astype(logits.dtype), None


cross_entropy.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)


def predicted_correctly(logits, labels):
  """[B, T] 1.0 where the label's logit is the largest, i.e. `argmax(logits) == labels`.

  Written as `logits[label] >= max(logits)`: the max is the one the loss takes anyway, so
  XLA shares it, and the label's logit is a gather. `argmax` fused with that max into a
  (value, index) reduction over the [B*T, V] logits, which XLA:CPU runs slowly
  (`experiments/speed/README.md`). The two differ only when another word's logit exactly
  ties the label's: then this counts the token as correct.
  """
  logits = jax.lax.stop_gradient(logits)
  label_logit = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
  return (label_logit >= jnp.max(logits, axis=-1)).astype(jnp.float32)


def _psum(x, axis_name):
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def _loss_terms(model, params, batch, rng, label_smoothing, train):
  logits = model.apply({"params": params}, batch["src"], batch["tgt_in"], train=train,
                       rngs={"dropout": rng} if train else None)
  labels = batch["tgt_out"]
  weights = (labels != PAD_ID).astype(jnp.float32)
  loss, nll = cross_entropy(logits, labels, label_smoothing)
  correct = predicted_correctly(logits, labels)
  return {"loss": jnp.sum(loss * weights), "nll": jnp.sum(nll * weights),
          "correct": jnp.sum(correct * weights), "tokens": jnp.sum(weights)}


def train_step(state: TrainState, batch, rng, *, model, label_smoothing: float = 0.0,
               grad_accum_steps: int = 1, axis_name=None):
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
      terms = _loss_terms(model, params, micro_batch, micro_rng, label_smoothing, train=True)
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
  metrics["grad_norm"] = optax.global_norm(grads)
  return new_state, metrics


def eval_step(params, batch, *, model, label_smoothing: float = 0.0, axis_name=None):
  """Summed loss terms of a batch, with padding rows (weight 0) left out."""
  batch = dict(batch)
  if "weight" in batch:
    batch["tgt_out"] = jnp.where(batch["weight"][:, None] > 0, batch["tgt_out"], PAD_ID)
    batch.pop("weight")
  return _psum(_loss_terms(model, params, batch, None, label_smoothing, train=False), axis_name)


def bind(model, train_cfg, axis_name=None):
  """The two steps with the model and the config's constants fixed."""
  return (functools.partial(train_step, model=model, label_smoothing=train_cfg.label_smoothing,
                            grad_accum_steps=train_cfg.grad_accum_steps, axis_name=axis_name),
          functools.partial(eval_step, model=model, label_smoothing=train_cfg.label_smoothing,
                            axis_name=axis_name))
