"""Attention scores for the attentive RNN decoders (Bahdanau et al. 2015, Luong et al. 2015).

An `Attention` module maps a query s (the decoder state) and the encoder states h_j to an
alignment a_j = softmax_j(score(s, h_j)) and a context c = sum_j a_j h_j: over every source
position (global attention), or over a window of 2D + 1 positions around an aligned position
p_t (Luong et al. 2015, sec. 3.2, local attention).
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnjax.models import intervention as intervention_lib
from attnjax.models.intervention import Intervention
from attnjax.models.layers import Dense

SCORES = ('dot', 'general', 'concat', 'additive', 'scaled_dot')
LOCALS = ('', 'm', 'p')  # global; local-m (monotonic); local-p (predictive)


def masked_softmax(scores: jax.Array, mask: jax.Array) -> jax.Array:
  """Softmax over the last axis, in float32; where `mask` is False the weight is exactly zero.

  A row whose every position is masked gets all-zero weights (not NaN).
  """
  scores = jnp.where(mask, scores.astype(jnp.float32), jnp.finfo(jnp.float32).min)
  return jnp.where(mask, jax.nn.softmax(scores, axis=-1), 0.0)


def window(position: jax.Array, source_len: int, half_width: int):
  """Luong's local window around p_t (sec. 3.2): position [...] -> (inside [..., S], the
  Gaussian exp(-(s - p_t)^2 / (2 sigma^2)) with sigma = D / 2, [..., S]), for s = 0 .. S-1."""
  distance = jnp.arange(source_len, dtype=jnp.float32) - position[..., None]  # [..., S]
  sigma = half_width / 2
  return jnp.abs(distance) <= half_width, jnp.exp(-distance ** 2 / (2 * sigma ** 2))


class Attention(nn.Module):
  """Global or local attention with one of five scores.

  score(s, h_j):
    dot         s^T h_j                      Luong et al. 2015, eq. 8
    general     s^T W_a h_j                  Luong et al. 2015, eq. 8
    concat      v_a^T tanh(W_a [s; h_j])     Luong et al. 2015, eq. 8
    additive    v_a^T tanh(W_a s + U_a h_j)  Bahdanau et al. 2015, eq. 6 and A.1.2
    scaled_dot  s^T h_j / sqrt(d)            Vaswani et al. 2017, eq. 1

  `concat` splits W_a = [W_1, W_2] so that W_a [s; h_j] = W_1 s + W_2 h_j: it is the same
  function as `additive`; both names are kept so that configs read like the papers.

  Key-side projections (W_a h_j, U_a h_j, W_2 h_j) depend on the source only, so
  `prepare_keys` computes them once per sentence and `attend` reuses them at every step.
  For `dot` and `scaled_dot` the keys must have the query's size; when they do not
  (e.g. a bidirectional encoder with an odd hidden size), `prepare_keys` maps them to it
  with a learned linear layer, which makes the score `general` in effect. The context is
  always a mix of the original keys h_j.

  Local attention (Luong et al. 2015, sec. 3.2) keeps the score but weighs only the positions
  s with |s - p_t| <= D (the window, clipped to the source):
    local-m  p_t = min(t, S_x - 1), the target step t; a_t = softmax over the window
    local-p  p_t = S_x * sigmoid(v_p^T tanh(W_p s_t))                        (eq. 9)
             a_t(s) = softmax over the window * exp(-(s - p_t)^2 / (2 sigma^2)),
             sigma = D / 2                                                  (eq. 10)
  with S_x the sentence's real length (EOS included; positions count from 0). Local-m's p_t
  stops at the last real position, so a target longer than its source still attends to the
  source's end. As in the paper, local-p's weights are not renormalised after the Gaussian:
  they sum to at most 1. The scores are computed over the whole source and masked outside
  the window: the same cost as global attention, which at our sentence lengths is small.

  Attributes:
    score: one of SCORES.
    query_dim: size of the query s.
    hidden_dim: width of v_a for `concat` and `additive` (default: query_dim).
    local: '' (global), 'm' or 'p'.
    half_width: D, the window's half-width (local attention).
  """

  score: str
  query_dim: int
  hidden_dim: int | None = None
  local: str = ''
  half_width: int = 10
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  intervention: Intervention | None = None

  def setup(self):
    if self.score not in SCORES:
      raise ValueError(f'Attention score {self.score!r} is not one of {", ".join(SCORES)}.')
    if self.local not in LOCALS:
      raise ValueError(f"Local attention {self.local!r} is not one of 'm', 'p' or '' (global).")
    width = self.hidden_dim or self.query_dim
    dense = lambda features: Dense(
        features, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype)
    if self.score in ('concat', 'additive'):
      self.query_projection = dense(width)  # W_a (W_1 for concat)
      self.key_projection = dense(width)  # U_a (W_2 for concat)
      self.v = dense(1)  # v_a
    else:
      # W_a for general; for dot/scaled_dot, used only if the key size differs.
      self.key_projection = dense(self.query_dim)
    if self.local == 'p':
      self.position_projection = dense(self.query_dim)  # W_p
      self.position_v = dense(1)  # v_p

  def prepare_keys(self, keys: jax.Array) -> jax.Array:
    """The key side of the score, once per sentence: [B, S, Dk] -> [B, S, D']."""
    if self.score in ('dot', 'scaled_dot') and keys.shape[-1] == self.query_dim:
      return keys.astype(self.dtype)
    return self.key_projection(keys)

  def aligned_position(self, query, mask, step):
    """p_t [B, T] in float32 for queries [B, T, Dq]; local-m reads `step` [B, T]."""
    length = jnp.sum(mask, axis=-1, keepdims=True).astype(jnp.float32)  # [B, 1]: S_x
    if self.local == 'm':
      return jnp.minimum(step.astype(jnp.float32), length - 1)
    hidden = jnp.tanh(self.position_projection(query))  # [B, T, Dq]
    return length * jax.nn.sigmoid(self.position_v(hidden)[..., 0].astype(jnp.float32))

  def attend(self, query, keys, prepared_keys, mask, step=None, gold=None):
    """Alignment and context for a query [B, Dq] or a query per step [B, T, Dq].

    Args:
      query: s, [B, Dq] or [B, T, Dq].
      keys: h_j, [B, S, Dk].
      prepared_keys: `prepare_keys(keys)`.
      mask: [B, S], False at source padding.
      step: the target position t of each query, [B] or [B, T] (local-m and the permute
        intervention).
      gold: the gold intervention's attention, [B, S] or [B, T, S].

    Returns:
      context [B, Dk] (or [B, T, Dk]) in the compute dtype and alignment [B, S]
      (or [B, T, S]) in float32.
    """
    one_step = query.ndim == 2
    if one_step:
      query = query[:, None]  # [B, 1, Dq]
      step = None if step is None else step[:, None]  # [B, 1]
      gold = None if gold is None else gold[:, None]  # [B, 1, S]
    query = query.astype(self.dtype)
    if self.score in ('concat', 'additive'):
      hidden = jnp.tanh(self.query_projection(query)[:, :, None, :]
                        + prepared_keys[:, None, :, :])  # [B, T, S, width]
      score = self.v(hidden)[..., 0]  # [B, T, S]
    else:
      score = jnp.einsum('btd,bsd->bts', query, prepared_keys)  # [B, T, S]
      if self.score == 'scaled_dot':
        score = score / math.sqrt(query.shape[-1])
    mask = mask[:, None, :]  # [B, 1, S]
    if self.local:
      if self.local == 'm' and step is None:
        raise ValueError('local-m attention needs the target position `step` of each query.')
      position = self.aligned_position(query, mask[:, 0], step)  # [B, T]: p_t
      inside, gaussian = window(position, score.shape[-1], self.half_width)  # [B, T, S] each
      alignment = masked_softmax(score, mask & inside)  # [B, T, S]
      if self.local == 'p':
        alignment = alignment * gaussian
    else:
      alignment = masked_softmax(score, mask)  # [B, T, S]
    if self.intervention is not None:
      if step is None:
        raise ValueError('an intervention needs the target position `step` of each query.')
      alignment = intervention_lib.replace(alignment, mask[:, 0], self.intervention, step, gold)
    context = jnp.einsum('bts,bsd->btd', alignment.astype(self.dtype),
                         keys.astype(self.dtype))  # [B, T, Dk]
    if one_step:
      return context[:, 0], alignment[:, 0]
    return context, alignment

  def __call__(self, query, keys, mask, step=None):
    """`attend` with keys prepared on the spot: returns (context, alignment)."""
    return self.attend(query, keys, self.prepare_keys(keys), mask, step)
