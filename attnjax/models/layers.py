"""Dense layers that see one token axis.

`Dense` and `DenseGeneral` are Flax's, with the same parameters and initialisation, applied
to the input with its leading (token) axes flattened into one: x [B, T, ..., D] runs as
[B*T, ..., D]. The forward pass is the same product, but the kernel's gradient then
contracts one axis instead of two. With two (batch and time), XLA:CPU materialises the
incoming gradient transposed (for the output layer, a 64 MB copy of a [64, 32, 8000]
array) and runs the product on a slow path: in `attnjax bench --model rnn_seq2seq` the
output layer's kernel gradient alone took about 165 ms of a 590 ms step. `experiments/speed/
README.md` has the measurements.
"""

from typing import Sequence

import flax.linen as nn
import jax


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
