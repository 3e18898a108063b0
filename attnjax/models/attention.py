"""Attention scores for the attentive RNN decoders (Bahdanau et al. 2015, Luong et al. 2015).

An `Attention` module maps a query s (the decoder state) and the encoder states h_j to an
alignment a_j = softmax_j(score(s, h_j)) and a context c = sum_j a_j h_j.
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnjax.models.layers import Dense

SCORES = ('dot', 'general', 'concat', 'additive', 'scaled_dot')


def masked_softmax(scores: jax.Array, mask: jax.Array) -> jax.Array:
  """Softmax over the last axis, in float32; where `mask` is False the weight is exactly zero.

  A row whose every position is masked gets all-zero weights (not NaN).
  """
  scores = jnp.where(mask, scores.astype(jnp.float32), jnp.finfo(jnp.float32).min)
  return jnp.where(mask, jax.nn.softmax(scores, axis=-1), 0.0)


class Attention(nn.Module):
  """Global attention with one of five scores.

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

  Attributes:
    score: one of SCORES.
    query_dim: size of the query s.
    hidden_dim: width of v_a for `concat` and `additive` (default: query_dim).
  """

  score: str
  query_dim: int
  hidden_dim: int | None = None
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  def setup(self):
    if self.score not in SCORES:
      raise ValueError(f'Attention score {self.score!r} is not one of {", ".join(SCORES)}.')
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

  def prepare_keys(self, keys: jax.Array) -> jax.Array:
    """The key side of the score, once per sentence: [B, S, Dk] -> [B, S, D']."""
    if self.score in ('dot', 'scaled_dot') and keys.shape[-1] == self.query_dim:
      return keys.astype(self.dtype)
    return self.key_projection(keys)

  def attend(self, query, keys, prepared_keys, mask):
    """Alignment and context for a query [B, Dq] or a query per step [B, T, Dq].

    Args:
      query: s, [B, Dq] or [B, T, Dq].
      keys: h_j, [B, S, Dk].
      prepared_keys: `prepare_keys(keys)`.
      mask: [B, S], False at source padding.

    Returns:
      context [B, Dk] (or [B, T, Dk]) in the compute dtype and alignment [B, S]
      (or [B, T, S]) in float32.
    """
    one_step = query.ndim == 2
    if one_step:
      query = query[:, None]  # [B, 1, Dq]
    query = query.astype(self.dtype)
    if self.score in ('concat', 'additive'):
      hidden = jnp.tanh(self.query_projection(query)[:, :, None, :]
                        + prepared_keys[:, None, :, :])  # [B, T, S, width]
      score = self.v(hidden)[..., 0]  # [B, T, S]
    else:
      score = jnp.einsum('btd,bsd->bts', query, prepared_keys)  # [B, T, S]
      if self.score == 'scaled_dot':
        score = score / math.sqrt(query.shape[-1])
    alignment = masked_softmax(score, mask[:, None, :])  # [B, T, S]
    context = jnp.einsum('bts,bsd->btd', alignment.astype(self.dtype),
                         keys.astype(self.dtype))  # [B, T, Dk]
    if one_step:
      return context[:, 0], alignment[:, 0]
    return context, alignment

  def __call__(self, query, keys, mask):
    """`attend` with keys prepared on the spot: returns (context, alignment)."""
    return self.attend(query, keys, self.prepare_keys(keys), mask)
