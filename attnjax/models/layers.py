"""Layers with a cheaper implementation than Flax's: dense layers that see one token axis,
an embedding whose gradient is a float32 scatter along one axis, dropout whose mask comes
from a counter-based hash, and a dense layer that hands its bias to the residual connection
after it (`DenseApart`, `Dropout.residual`).

`Dense` and `DenseGeneral` are Flax's, with the same parameters and initialisation, applied
to the input with its leading (token) axes flattened into one: x [B, T, ..., D] runs as
[B*T, ..., D]. The forward pass is the same product, but the kernel's gradient then
contracts one axis instead of two. With two (batch and time), XLA:CPU materialises the
incoming gradient transposed (for the output layer, a copy of the whole [B, T, V] array)
and runs the product on a slow path (`experiments/speed/README.md` has the measurements).
"""

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def _flat(x: jax.Array, features: int) -> jax.Array:
  """[..., *features_shape] -> [N, *features_shape], where the last `features` axes are kept."""
  return x.reshape((-1,) + x.shape[x.ndim - features:])


class Dense(nn.Dense):
  """`nn.Dense` over x [..., D] computed as [N, D] -> [N, features]."""

  def __call__(self, inputs: jax.Array) -> jax.Array:
    y = super().__call__(_flat(inputs, 1))
    return y.reshape(inputs.shape[:-1] + y.shape[1:])


class DenseGeneral(nn.DenseGeneral):
  """`nn.DenseGeneral` contracting trailing axes, computed with the leading axes flattened."""

  def __call__(self, inputs: jax.Array) -> jax.Array:
    axis = self.axis if isinstance(self.axis, Sequence) else (self.axis,)
    if sorted(axis) != list(range(-len(axis), 0)):
      raise ValueError(f'DenseGeneral here contracts trailing axes given as negative indices '
                       f'(e.g. axis=(-2, -1)), got axis={self.axis}.')
    y = super().__call__(_flat(inputs, len(axis)))
    return y.reshape(inputs.shape[:inputs.ndim - len(axis)] + y.shape[1:])


class DenseApart(nn.DenseGeneral):
  """A dense layer over trailing axes that returns its product and its bias apart: (x W, b).

  The parameters (names, shapes, initialisation) are those of `Dense` (axis=-1) or
  `DenseGeneral` over the same axes, so a model reads the same checkpoint either way. The
  caller adds b where it fuses best: `Dropout.residual` adds it inside the one elementwise
  pass of bias, dropout and residual after the sublayer (Megatron-LM's `skip_bias_add` and
  `bias_dropout_add`), instead of beside the product, where XLA may add it in the matrix
  product's epilogue and write the biased output out for a second pass.
  """

  @nn.compact
  def __call__(self, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
    axis = self.axis if isinstance(self.axis, Sequence) else (self.axis,)
    if sorted(axis) != list(range(-len(axis), 0)) or self.batch_dims:
      raise ValueError(f'DenseApart contracts trailing axes given as negative indices '
                       f'(e.g. axis=(-2, -1)) and takes no batch_dims, got axis={self.axis}.')
    features = tuple(self.features) if isinstance(self.features, Sequence) else (self.features,)
    x = _flat(inputs, len(axis))  # [N, *contracted]
    contracted = x.shape[1:]
    # Initialised as DenseGeneral does: on the flattened [fan_in, fan_out] matrix, then reshaped.
    flat_init = lambda init, flat: lambda rng, shape, dtype: init(rng, flat, dtype).reshape(shape)
    kernel = self.param('kernel', flat_init(self.kernel_init, (math.prod(contracted), math.prod(features))),
                        contracted + features, self.param_dtype)
    bias = self.param('bias', flat_init(self.bias_init, (math.prod(features),)), features,
                      self.param_dtype)
    x, kernel, bias = self.promote_dtype(x, kernel, bias, dtype=self.dtype)
    contract = tuple(range(1, x.ndim)), tuple(range(len(contracted)))
    y = jax.lax.dot_general(x, kernel, (contract, ((), ())), precision=self.precision)
    return y.reshape(inputs.shape[:inputs.ndim - len(axis)] + features), bias


def embed_rows(table: jax.Array, ids: jax.Array, dtype) -> jax.Array:
  """table[ids] cast to `dtype`: the rows taken from the parameter as it is (float32), then cast.

  The same values as Flax's `nn.Embed`, which casts the whole table first; but the lookup's
  gradient is then a float32 scatter-add rather than one in the compute dtype, which on a GPU
  is far slower where ids repeat (a BOS in every row) and sums the repeated rows coarsely
  (`experiments/speed/embed_grad.py` times both; `experiments/gpu/results/README.md`). The ids
  are flattened to one axis, as the dense layers here flatten their tokens.
  """
  rows = jnp.take(table, ids.reshape(-1), axis=0).astype(dtype)
  return rows.reshape(ids.shape + table.shape[1:])


class Embed(nn.Embed):
  """`nn.Embed` (the same parameter, initialisation and `attend`) looking rows up with
  `embed_rows`; without a `dtype` the rows keep the parameter's."""

  def __call__(self, inputs: jax.Array) -> jax.Array:
    if not jnp.issubdtype(inputs.dtype, jnp.integer):
      raise ValueError(f'Embed takes integer ids, got {inputs.dtype}')
    dtype = self.embedding.dtype if self.dtype is None else self.dtype
    return embed_rows(self.embedding, inputs, dtype)


def attend(embed: nn.Embed, query: jax.Array) -> jax.Array:
  """`embed.attend(query)` (logits against the embedding table) with the leading axes flattened."""
  y = embed.attend(_flat(query, 1))
  return y.reshape(query.shape[:-1] + y.shape[1:])


def _mix(x: jax.Array) -> jax.Array:
  """MurmurHash3's 32-bit finaliser (Appleby): a bijection of uint32 in which every input
  bit flips each output bit with probability close to 1/2."""
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x85EBCA6B)
  x = x ^ (x >> 13)
  x = x * jnp.uint32(0xC2B2AE35)
  return x ^ (x >> 16)


def hashed_bits(key: jax.Array, shape) -> jax.Array:
  """uint32 random bits of `shape`: unit i gets mix(mix(i ^ k0) ^ k1), (k0, k1) the key's words.

  A counter-based generator: elementwise integer arithmetic that XLA fuses into the op
  that uses the bits, where `jax.random.bits` runs threefry's rounds as a loop over a
  materialised array. The key comes from `jax.random` (Flax's per-layer, per-step
  `make_rng`), so different layers and steps get unrelated streams.
  """
  count = math.prod(shape)
  if count >= 2 ** 32:
    raise ValueError(f'hashed_bits numbers units with uint32; {shape} has {count} of them')
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  words = key.reshape(-1).astype(jnp.uint32)
  index = jax.lax.iota(jnp.uint32, count).reshape(shape)
  return _mix(_mix(index ^ words[0]) ^ words[-1])


class Dropout(nn.Dropout):
  """`nn.Dropout` with a cheaper mask: 32 random bits per unit from `hashed_bits`.

  A unit is kept when its bits, read as an integer, are below round(keep * 2^32), and kept
  units are scaled by 1/keep as in Flax. Flax draws the bits with `jax.random.bits`
  (threefry, which XLA:CPU runs as a loop over a materialised array, some 30 loops a
  Transformer training step); the hash fuses into the select that applies the mask
  (`experiments/speed/README.md` compares the two).
  """

  def _keep(self, inputs, rng):
    """The kept units of `inputs`, scaled by 1/keep, and zeros elsewhere (0 < rate < 1)."""
    keep = 1.0 - self.rate
    if rng is None:
      rng = self.make_rng(self.rng_collection)
    shape = tuple(1 if axis in self.broadcast_dims else size
                  for axis, size in enumerate(inputs.shape))  # the mask's shape
    mask = hashed_bits(rng, shape) < jnp.uint32(min(round(keep * 2 ** 32), 2 ** 32 - 1))
    return jnp.where(mask, inputs / jnp.asarray(keep, inputs.dtype), jnp.zeros_like(inputs))

  @nn.compact
  def __call__(self, inputs, deterministic: bool | None = None, rng=None):
    deterministic = nn.merge_param('deterministic', self.deterministic, deterministic)
    if self.rate == 0.0 or deterministic:
      return inputs
    if self.rate == 1.0:
      return jnp.zeros_like(inputs)
    return self._keep(inputs, rng)

  def residual(self, x, y, bias, deterministic: bool | None = None, rng=None):
    """x + Dropout(y + bias), with y and bias from `DenseApart`: the sublayer's bias, dropout
    and residual as one elementwise expression, which XLA fuses into one pass over the tokens.
    The mask is the one `__call__` would draw in its place (the same rng stream), so the values
    are those of `x + self(y + bias)`."""
    deterministic = nn.merge_param('deterministic', self.deterministic, deterministic)
    y = y + bias
    if self.rate == 0.0 or deterministic:
      return x + y
    if self.rate == 1.0:
      return x
    return x + self._keep(y, rng)
