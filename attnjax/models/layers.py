"""Layers with a cheaper CPU implementation than Flax's: dense layers that see one token
axis, and dropout that draws 16 random bits per unit.

`Dense` and `DenseGeneral` are Flax's, with the same parameters and initialisation, applied
to the input with its leading (token) axes flattened into one: x [B, T, ..., D] runs as
[B*T, ..., D]. The forward pass is the same product, but the kernel's gradient then
contracts one axis instead of two. With two (batch and time), XLA:CPU materialises the
incoming gradient transposed (for the output layer, a 64 MB copy of a [64, 32, 8000]
array) and runs the product on a slow path: in `attnjax bench --model rnn_seq2seq` the
output layer's kernel gradient alone took about 165 ms of a 590 ms step (the measurements
are in `experiments/speed/README.md`).
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


def attend(embed: nn.Embed, query: jax.Array) -> jax.Array:
  """`embed.attend(query)` (logits against the embedding table) with the leading axes flattened."""
  y = embed.attend(_flat(query, 1))
  return y.reshape(query.shape[:-1] + y.shape[1:])


class Dropout(nn.Dropout):
  """`nn.Dropout` that draws 16 random bits per unit instead of 32.

  A unit is kept when its 16 bits, read as an integer, are below round(keep * 2^16): the
  keep probability is quantised to 1/65536 (0.9 becomes 0.899994), and kept units are scaled
  by 1/keep as in Flax. Random bits come from threefry, which XLA:CPU runs as a loop; half as
  many bits made the bench's Transformer training step about 5% faster (dropout as a whole
  costs it 7%; `experiments/speed/README.md`).
  """

  @nn.compact
  def __call__(self, inputs, deterministic: bool | None = None, rng=None):
    deterministic = nn.merge_param('deterministic', self.deterministic, deterministic)
    if self.rate == 0.0 or deterministic:
      return inputs
    if self.rate == 1.0:
      return jnp.zeros_like(inputs)
    keep = 1.0 - self.rate
    if rng is None:
      rng = self.make_rng(self.rng_collection)
    shape = tuple(1 if axis in self.broadcast_dims else size
                  for axis, size in enumerate(inputs.shape))  # the mask's shape
    count = math.prod(shape)
    bits = jax.random.bits(rng, ((count + 1) // 2,), jnp.uint32)
    halves = jax.lax.bitcast_convert_type(bits, jnp.uint16).reshape(-1)[:count]  # [2 * ...]
    mask = halves.reshape(shape) < round(keep * 2 ** 16)
    return jnp.where(mask, inputs / jnp.asarray(keep, inputs.dtype), jnp.zeros_like(inputs))
