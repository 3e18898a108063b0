"""The Transformer encoder-decoder (Vaswani et al. 2017), with an explicit KV cache.

Multi-head attention is written out here so that every attention map can be returned and
step-wise decoding can keep its keys and values in plain arrays of the decoding state.
Where nothing asks for the maps (the 'intermediates' collection is not mutable) and no
dropout falls on them, attention goes through `jax.nn.dot_product_attention` instead:
the same function, fused (cuDNN's kernel on a GPU in bfloat16), weights never written out.
`norm='post'` is the paper's LayerNorm(x + Dropout(sublayer(x))); `norm='pre'` is
x + Dropout(sublayer(LayerNorm(x))) with a final LayerNorm on each stack. With
`fused_residual`, each sublayer's last dense layer leaves its bias to the residual
connection, which adds bias, dropout and residual in one elementwise pass
(`layers.DenseApart`, `layers.Dropout.residual`): the same function and parameters.
"""

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnjax.tokens import PAD_ID
from attnjax.models import layers
from attnjax.models import intervention as intervention_lib
from attnjax.models.attention import masked_softmax
from attnjax.models.intervention import Intervention

POSITIONS = ('sinusoidal', 'learned')
NORMS = ('pre', 'post')


def sinusoidal_positions(positions: jax.Array, d_model: int) -> jax.Array:
  """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...) (Vaswani 2017, sec. 3.5).

  positions [...] int -> [..., d_model] float32; d_model must be even.
  """
  rates = jnp.exp(-math.log(10000.0) * jnp.arange(0, d_model, 2) / d_model)  # [d/2]
  angles = positions[..., None].astype(jnp.float32) * rates  # [..., d/2]
  return jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape(*positions.shape, d_model)


def dot_product_attention(query, key, value, mask, dropout: layers.Dropout, train: bool,
                          replace=None):
  """softmax(Q K^T / sqrt(d_k)) V (Vaswani 2017, eq. 1), per head; `replace(weights)`, when
  given, puts other weights in place of the softmax's (an intervention).

  query [B, T, H, Dh]; key and value head-major, [B, H, S, Dh], the layout a decoding
  cache is kept in (a [B, S, H, Dh] cache costs a transpose of every cache every step);
  mask broadcastable to [B, H, T, S].
  Returns the output [B, T, H, Dh] and the weights [B, H, T, S] (float32, before dropout).
  """
  query = query * query.shape[-1] ** -0.5
  score = jnp.einsum('bthd,bhsd->bhts', query, key)  # [B, H, T, S]
  weights = masked_softmax(score, mask)
  if replace is not None:
    weights = replace(weights)
  dropped = dropout(weights, deterministic=not train).astype(value.dtype)
  return jnp.einsum('bhts,bhsd->bthd', dropped, value), weights


FUSED_DTYPES = (jnp.bfloat16, jnp.float16)  # what cuDNN's fused attention takes


def fused_attention(query, key, value, mask):
  """`dot_product_attention`'s output, without its weights or dropout, by
  `jax.nn.dot_product_attention`: cuDNN's fused kernel on a GPU for bfloat16/float16 inputs
  it supports, XLA's composition elsewhere. Shapes as `dot_product_attention`'s; a query row
  with no visible key gets a uniform mix of the values here, zeros there (only all-padding
  rows, whose loss weight is zero).
  """
  key, value = key.swapaxes(1, 2), value.swapaxes(1, 2)  # [B, S, H, Dh], the layout it takes
  mask = jnp.broadcast_to(mask, (mask.shape[0], 1, query.shape[1], key.shape[1]))
  if jax.default_backend() == 'gpu' and query.dtype in FUSED_DTYPES:
    try:
      return jax.nn.dot_product_attention(query, key, value, mask=mask, implementation='cudnn')
    except (ValueError, NotImplementedError, RuntimeError):  # a shape cuDNN's kernel refuses
      pass
  return jax.nn.dot_product_attention(query, key, value, mask=mask, implementation='xla')


class _Attention(nn.Module):
  """Common fields of self- and cross-attention."""

  d_model: int
  num_heads: int
  attention_dropout: float
  dtype: Any = jnp.float32
  fused_residual: bool = False

  def _dense(self, features, axis=-1):
    return layers.DenseGeneral(features, axis=axis, dtype=self.dtype)

  def _out(self):
    """The output projection [.., H, Dh] -> [.., d_model]; with `fused_residual` it returns
    (product, bias) for `_Layer.after` to add."""
    dense = layers.DenseApart if self.fused_residual else layers.DenseGeneral
    return dense(self.d_model, axis=(-2, -1), dtype=self.dtype)

  def _heads(self, *leading):
    return (*leading, self.num_heads, self.d_model // self.num_heads)

  def _attend(self, query, key, value, mask, train, replace=None):
    """Output [B, T, d_model] and weights [B, H, T, S], or None when nothing records them.
    `replace`: see `dot_product_attention`. With the 'gates' collection, each head's output is
    scaled by its gate before the output projection."""
    if (replace is not None or self.is_mutable_collection('intermediates')
        or (train and self.attention_dropout > 0)):
      out, weights = dot_product_attention(query, key, value, mask, self.drop, train, replace)
    else:
      out, weights = fused_attention(query, key, value, mask), None
    if self.has_variable('gates', 'gate'):
      out = out * self.get_variable('gates', 'gate').astype(out.dtype)[:, None]  # [H, 1]
    return self.out(out), weights


class SelfAttention(_Attention):
  """Multi-head self-attention with one fused Q/K/V projection."""

  def setup(self):
    self.qkv = self._dense(self._heads(3))
    self.out = self._out()
    self.drop = layers.Dropout(self.attention_dropout)

  def __call__(self, x, mask, train: bool):
    """x [B, T, d_model], mask broadcastable to [B, H, T, T]."""
    query, key, value = jnp.moveaxis(self.qkv(x), 2, 0)  # each [B, T, H, Dh]
    return self._attend(query, key.swapaxes(1, 2), value.swapaxes(1, 2), mask, train)

  def step(self, x, cache, step):
    """x [B, 1, d_model] at position `step` [B]; writes its K/V into the cache.

    cache {'k', 'v'}: [B, H, max_len, Dh]; positions after `step` are masked.
    """
    query, key, value = jnp.moveaxis(self.qkv(x), 2, 0)  # each [B, 1, H, Dh]
    key, value = key.swapaxes(1, 2), value.swapaxes(1, 2)  # [B, H, 1, Dh]
    positions = jnp.arange(cache['k'].shape[2])  # [max_len]
    here = (positions == step[:, None])[:, None, :, None]  # [B, 1, max_len, 1]
    cache = {'k': jnp.where(here, key, cache['k']), 'v': jnp.where(here, value, cache['v'])}
    mask = (positions <= step[:, None])[:, None, None, :]  # [B, 1, 1, max_len]
    out, _ = self._attend(query, cache['k'], cache['v'], mask, False)
    return out, cache


class CrossAttention(_Attention):
  """Multi-head attention from the decoder to the encoder memory."""

  intervention: Intervention | None = None

  def setup(self):
    self.query = self._dense(self._heads())
    self.kv = self._dense(self._heads(2))
    self.out = self._out()
    self.drop = layers.Dropout(self.attention_dropout)

  def keys_values(self, memory):
    """memory [B, S, d_model] -> {'k', 'v'}: [B, H, S, Dh], once per sentence."""
    key, value = jnp.moveaxis(self.kv(memory), 2, 0)
    return {'k': key.swapaxes(1, 2), 'v': value.swapaxes(1, 2)}

  def __call__(self, x, kv, mask, train: bool, step=None, gold=None):
    """x [B, T, d_model] at target positions `step` [B, T]; `gold` [B, T, S]: see
    `intervention.replace`."""
    replace = None
    if self.intervention is not None:
      replace = lambda weights: intervention_lib.replace(
          weights, mask[:, 0, -1, :], self.intervention, step, gold)
    return self._attend(self.query(x), kv['k'], kv['v'], mask, train, replace)


class _Layer(nn.Module):
  """Residual sublayers with pre- or post-LayerNorm."""

  d_model: int
  num_heads: int
  d_ff: int
  dropout: float
  attention_dropout: float
  norm: str
  dtype: Any = jnp.float32
  fused_residual: bool = False

  def _sublayers(self, count):
    """For setup: `count` LayerNorms, residual dropout and the feed-forward sublayer."""
    self.norms = [nn.LayerNorm(dtype=self.dtype) for _ in range(count)]
    self.drop = layers.Dropout(self.dropout)
    self.ff_in = layers.Dense(self.d_ff, dtype=self.dtype)
    out = layers.DenseApart if self.fused_residual else layers.Dense
    self.ff_out = out(self.d_model, dtype=self.dtype)

  def _attention_args(self):
    return (self.d_model, self.num_heads, self.attention_dropout, self.dtype, self.fused_residual)

  def before(self, x, i):
    """The sublayer's input: LayerNorm(x) for pre-LN, x for post-LN."""
    return self.norms[i](x) if self.norm == 'pre' else x

  def after(self, x, y, i, train):
    """x + Dropout(y) for pre-LN, LayerNorm(x + Dropout(y)) for post-LN; with
    `fused_residual`, y is the sublayer's (product, bias)."""
    if self.fused_residual:
      x = self.drop.residual(x, *y, deterministic=not train)
    else:
      x = x + self.drop(y, deterministic=not train)
    return x if self.norm == 'pre' else self.norms[i](x)

  def feed_forward(self, x, i, train):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2 (Vaswani 2017, eq. 2), as sublayer i."""
    return self.after(x, self.ff_out(nn.relu(self.ff_in(self.before(x, i)))), i, train)


class EncoderLayer(_Layer):

  def setup(self):
    self._sublayers(2)
    self.self_attention = SelfAttention(*self._attention_args())

  def __call__(self, x, mask, train):
    """x [B, S, d_model], mask [B, 1, 1, S] -> x, weights [B, H, S, S]."""
    y, weights = self.self_attention(self.before(x, 0), mask, train)
    return self.feed_forward(self.after(x, y, 0, train), 1, train), weights


class DecoderLayer(_Layer):

  intervention: Intervention | None = None

  def setup(self):
    self._sublayers(3)
    args = self._attention_args()
    self.self_attention = SelfAttention(*args)
    self.cross_attention = CrossAttention(*args, intervention=self.intervention)

  def keys_values(self, memory):
    return self.cross_attention.keys_values(memory)

  def __call__(self, x, memory, causal_mask, src_mask, train, step=None, gold=None):
    """x [B, T, d_model] -> x, self weights [B, H, T, T], cross weights [B, H, T, S]."""
    y, self_weights = self.self_attention(self.before(x, 0), causal_mask, train)
    x = self.after(x, y, 0, train)
    y, cross_weights = self.cross_attention(
        self.before(x, 1), self.keys_values(memory), src_mask, train, step, gold)
    x = self.after(x, y, 1, train)
    return self.feed_forward(x, 2, train), self_weights, cross_weights

  def step(self, x, cache, kv, step, src_mask):
    """x [B, 1, d_model] -> x, cache, cross weights [B, H, 1, S]."""
    y, cache = self.self_attention.step(self.before(x, 0), cache, step)
    x = self.after(x, y, 0, False)
    y, cross_weights = self.cross_attention(self.before(x, 1), kv, src_mask, False, step[:, None])
    x = self.after(x, y, 1, False)
    return self.feed_forward(x, 2, False), cache, cross_weights


def _same_segment(query_segments, key_segments):
  """[B, 1, Q, K]: True where a query and a key belong to the same packed pair (not padding)."""
  same = query_segments[:, :, None] == key_segments[:, None, :]
  return (same & (key_segments[:, None, :] != 0))[:, None]


def _stack_layers(weights):
  """Per-layer [B, H, Tq, Tk] -> [B, Tq, L, H, Tk]; None when attention was fused."""
  if weights[0] is None:
    return None
  return jnp.stack(weights, axis=1).transpose(0, 3, 1, 2, 4)


class Transformer(nn.Module):
  """Encoder-decoder Transformer implementing the attnjax model contract.

  Decoding state: {'step': [B] int32 (position of the next token), 'cache': per decoder layer
  {'k', 'v'}: [B, H, max_len, Dh], 'cross': per decoder layer {'k', 'v'}: [B, H, S, Dh]
  (the encoder memory's projections, computed once), 'src_mask': [B, S]}.
  """

  src_vocab_size: int
  tgt_vocab_size: int
  d_model: int
  num_heads: int
  d_ff: int
  num_encoder_layers: int
  num_decoder_layers: int
  dropout: float
  attention_dropout: float
  positions: str
  norm: str
  share_embeddings: bool
  max_len: int
  fused_residual: bool
  dtype: Any
  intervention: Intervention | None = None

  def setup(self):
    embed = functools.partial(
        layers.Embed, features=self.d_model, dtype=self.dtype,
        embedding_init=nn.initializers.normal(self.d_model ** -0.5))
    self.src_embed = embed(self.src_vocab_size)
    if not self.share_embeddings:
      self.tgt_embed = embed(self.tgt_vocab_size)
      self.projection = layers.Dense(self.tgt_vocab_size, dtype=self.dtype)
    if self.positions == 'learned':
      self.src_positions = embed(self.max_len)
      self.tgt_positions = embed(self.max_len)
    self.embed_drop = layers.Dropout(self.dropout)
    layer = (self.d_model, self.num_heads, self.d_ff, self.dropout, self.attention_dropout,
             self.norm, self.dtype, self.fused_residual)
    self.encoder_layers = [EncoderLayer(*layer) for _ in range(self.num_encoder_layers)]
    self.decoder_layers = [
        DecoderLayer(*layer, intervention=self.intervention
                     if self.intervention is not None and self.intervention.applies_to(i) else None)
        for i in range(self.num_decoder_layers)]
    if self.norm == 'pre':
      self.encoder_norm = nn.LayerNorm(dtype=self.dtype)
      self.decoder_norm = nn.LayerNorm(dtype=self.dtype)

  def _sow(self, name, weights):
    if weights is not None:
      self.sow('intermediates', name, weights)

  def _embed(self, tokens, positions, side, train):
    """sqrt(d_model) * E x + PE (Vaswani 2017, sec. 3.4-3.5): [B, T] -> [B, T, d_model]."""
    table = self.src_embed if side == 'src' or self.share_embeddings else self.tgt_embed
    x = table(tokens) * math.sqrt(self.d_model)
    if self.positions == 'learned':
      if positions.shape[-1] > self.max_len:
        raise ValueError(f'A {side} of length {positions.shape[-1]} exceeds model.max_len='
                         f'{self.max_len} learned positions; raise model.max_len.')
      x = x + (self.src_positions if side == 'src' else self.tgt_positions)(positions)
    else:
      x = x + sinusoidal_positions(positions, self.d_model).astype(x.dtype)
    return self.embed_drop(x, deterministic=not train)

  def _logits(self, y):
    """[..., d_model] -> [..., V] float32; the output layer is E^T when embeddings are shared."""
    if self.share_embeddings:
      return layers.attend(self.src_embed, y).astype(jnp.float32)
    return self.projection(y).astype(jnp.float32)

  def encode(self, src, train: bool = False, packing=None):
    """src [B, S] -> memory [B, S, d_model]; sows 'encoder_self_attention' [B, S, L, H, S].
    `packing`: see `__call__`."""
    if packing is None:
      mask = (src != PAD_ID)[:, None, None, :]  # [B, 1, 1, S]
      positions = jnp.arange(src.shape[1])[None]
    else:
      mask = _same_segment(packing['src_segmentation'], packing['src_segmentation'])
      positions = packing['src_position']
    x = self._embed(src, positions, 'src', train)
    weights = []
    for layer in self.encoder_layers:
      x, layer_weights = layer(x, mask, train)
      weights.append(layer_weights)
    self._sow('encoder_self_attention', _stack_layers(weights))
    return self.encoder_norm(x) if self.norm == 'pre' else x

  def __call__(self, src, tgt_in, train: bool = False, packing=None, gold=None,
               features_only: bool = False):
    """Teacher forcing: src [B, S], tgt_in [B, T] -> logits [B, T, V] (float32).

    `packing`, for rows that hold several pairs end to end (`data.pack`): a dict of
    'src_segmentation' and 'src_position' [B, S], 'tgt_segmentation' and 'tgt_position'
    [B, T] (int: the pair's number 1, 2, ... in its row, 0 on padding; the position within
    its pair). Each pair then attends within itself only, and its positions start at 0:
    its logits are those it has alone in a row. `gold` [B, T, S]: the cross-attention of the
    gold intervention (`attnjax.models.intervention`). With `features_only`, the decoder's
    output [B, T, d_model] that `logits_of` projects.
    """
    if packing is not None and self.intervention is not None:
      raise ValueError('interventions on the attention read unpacked rows; score without data.pack')
    memory = self.encode(src, train, packing)
    length = tgt_in.shape[1]
    causal_mask = jnp.tril(jnp.ones((length, length), bool))[None, None]  # [1, 1, T, T]
    if packing is None:
      src_mask = (src != PAD_ID)[:, None, None, :]  # [B, 1, 1, S]
      positions = jnp.arange(length)[None]
    else:
      src_mask = _same_segment(packing['tgt_segmentation'], packing['src_segmentation'])
      causal_mask = causal_mask & _same_segment(packing['tgt_segmentation'], packing['tgt_segmentation'])
      positions = packing['tgt_position']
    y = self._embed(tgt_in, positions, 'tgt', train)
    self_weights, cross_weights = [], []
    for layer in self.decoder_layers:
      y, layer_self, layer_cross = layer(y, memory, causal_mask, src_mask, train,
                                         jnp.broadcast_to(positions, tgt_in.shape), gold)
      self_weights.append(layer_self)
      cross_weights.append(layer_cross)
    self._sow('decoder_self_attention', _stack_layers(self_weights))
    self._sow('cross_attention', _stack_layers(cross_weights))
    y = self.decoder_norm(y) if self.norm == 'pre' else y
    return y if features_only else self._logits(y)

  def logits_of(self, y, train: bool = False):
    """The output layer: y [..., d_model] -> logits [..., V] (float32)."""
    del train
    return self._logits(y)

  def init_decode_state(self, src, max_len: int):
    """Encodes src and allocates a KV cache for `max_len` target positions."""
    if self.positions == 'learned' and max_len > self.max_len:
      raise ValueError(f'Decoding max_len={max_len} exceeds model.max_len={self.max_len} '
                       'learned positions; decode shorter or raise model.max_len.')
    memory = self.encode(src)
    batch = src.shape[0]
    empty = jnp.zeros((batch, self.num_heads, max_len, self.d_model // self.num_heads),
                      self.dtype)
    return {
        'step': jnp.zeros((batch,), jnp.int32),
        'cache': tuple({'k': empty, 'v': empty} for _ in self.decoder_layers),
        'cross': tuple(layer.keys_values(memory) for layer in self.decoder_layers),
        'src_mask': src != PAD_ID,
    }

  def decode_step(self, tokens, state):
    """tokens [B] (y_{t-1}; BOS first) -> (logits [B, V] float32, next state)."""
    step = state['step']
    y = self._embed(tokens[:, None], step[:, None], 'tgt', False)  # [B, 1, d_model]
    src_mask = state['src_mask'][:, None, None, :]  # [B, 1, 1, S]
    caches, cross_weights = [], []
    for layer, cache, kv in zip(self.decoder_layers, state['cache'], state['cross']):
      y, cache, layer_cross = layer.step(y, cache, kv, step, src_mask)
      caches.append(cache)
      cross_weights.append(None if layer_cross is None else layer_cross[:, :, 0])  # [B, H, S]
    if cross_weights[0] is not None:
      self._sow('cross_attention', jnp.stack(cross_weights, axis=1))  # [B, L, H, S]
    logits = self._logits(self.decoder_norm(y) if self.norm == 'pre' else y)[:, 0]
    return logits, {**state, 'step': step + 1, 'cache': tuple(caches)}
