"""The model contract's loss: per-token cross-entropy with its own gradient, and the summed
terms of a batch (loss, negative log-likelihood, correct tokens, tokens) that training,
validation and a trained model's perplexity all read."""

import functools

import jax
import jax.numpy as jnp

from attnjax.tokens import PAD_ID


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


PACKING = ("src_segmentation", "src_position", "tgt_segmentation", "tgt_position")


def loss_sums(model, params, batch, rng, label_smoothing, train, gates=None, chunk: int = 0):
  """Summed loss terms of `batch` under `model` with `params`; padding (PAD labels) left out.
  A packed batch (`data.pack`: the Transformer's) passes its segments and positions on; a
  batch with 'gold' [B, T, S], the gold intervention's attention; `gates`: the Transformer's
  head gates (`attnjax.models.intervention`). With `chunk` > 0 the output layer runs `chunk`
  target tokens at a time (`chunked_sums`), so no [tokens, vocabulary] array is kept."""
  extra = {}
  if packing := {k: batch[k] for k in PACKING if k in batch}:
    extra["packing"] = packing
  if "gold" in batch:
    extra["gold"] = batch["gold"]
  variables = {"params": params} if gates is None else {"params": params, "gates": gates}
  rngs = {"dropout": rng} if train else None
  labels = batch["tgt_out"]
  if chunk > 0:
    features = model.apply(variables, batch["src"], batch["tgt_in"], train=train, rngs=rngs,
                           features_only=True, **extra)
    logits_of = lambda f, key: model.apply(variables, f, train, method="logits_of",
                                           rngs=None if key is None else {"dropout": key})
    return chunked_sums(logits_of, features, labels, label_smoothing, chunk, rng if train else None)
  logits = model.apply(variables, batch["src"], batch["tgt_in"], train=train, rngs=rngs, **extra)
  return _sums(logits, labels, label_smoothing)


def _sums(logits, labels, label_smoothing):
  weights = (labels != PAD_ID).astype(jnp.float32)
  loss, nll = cross_entropy(logits, labels, label_smoothing)
  correct = predicted_correctly(logits, labels)
  return {"loss": jnp.sum(loss * weights), "nll": jnp.sum(nll * weights),
          "correct": jnp.sum(correct * weights), "tokens": jnp.sum(weights)}


def chunked_sums(logits_of, features, labels, label_smoothing, chunk: int, rng=None):
  """`_sums` of `logits_of(features)` computed `chunk` tokens at a time: features [B, T, D]
  and labels [B, T] are flattened and padded to whole chunks (PAD labels, which count
  nothing), and a scan projects one chunk, takes its loss terms and drops its logits. The
  chunk is rematerialised in the backward pass, so memory holds one chunk's [chunk, V]
  logits rather than the batch's [B, T, V]; the sums equal the unchunked ones up to rounding.
  `logits_of(features [C, D], key)`: the model's output layer (`key`: its dropout key)."""
  width = features.shape[-1]
  features, labels = features.reshape(-1, width), labels.reshape(-1)
  count = -(-labels.shape[0] // chunk)
  pad = count * chunk - labels.shape[0]
  features = jnp.pad(features, ((0, pad), (0, 0))).reshape(count, chunk, width)
  labels = jnp.pad(labels, (0, pad), constant_values=PAD_ID).reshape(count, chunk)
  keys = None if rng is None else jax.random.split(rng, count)

  @jax.checkpoint
  def one(f, l, key):
    return _sums(logits_of(f, key), l, label_smoothing)

  def body(total, xs):
    f, l, key = xs
    return jax.tree.map(jnp.add, total, one(f, l, key)), None

  zeros = {k: jnp.zeros((), jnp.float32) for k in ("loss", "nll", "correct", "tokens")}
  total, _ = jax.lax.scan(body, zeros, (features, labels, keys))
  return total


def eval_sums(params, batch, *, model, label_smoothing: float = 0.0, gates=None, chunk: int = 0):
  """`loss_sums` without dropout, with the padding rows of an evaluation batch (weight 0) left out."""
  batch = dict(batch)
  if "weight" in batch:
    batch["tgt_out"] = jnp.where(batch["weight"][:, None] > 0, batch["tgt_out"], PAD_ID)
    batch.pop("weight")
  batch.pop("index", None)
  return loss_sums(model, params, batch, None, label_smoothing, train=False, gates=gates, chunk=chunk)
