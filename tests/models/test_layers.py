"""The token-flattening dense layers are Flax's layers: same parameters, values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnjax.models import layers

X = jax.random.normal(jax.random.key(1), (2, 3, 4, 5))


def _same(ours, theirs, x):
  variables = ours.init(jax.random.key(0), x)
  reference = theirs.init(jax.random.key(0), x)
  jax.tree.map(np.testing.assert_array_equal, variables, reference)
  loss = lambda module: lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))
  value, grads = jax.value_and_grad(loss(ours), argnums=(0, 1))(variables, x)
  ref_value, ref_grads = jax.value_and_grad(loss(theirs), argnums=(0, 1))(reference, x)
  np.testing.assert_allclose(value, ref_value, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               grads, ref_grads)
  assert ours.apply(variables, x).shape == theirs.apply(reference, x).shape


def test_dense_is_flax_dense():
  _same(layers.Dense(7), nn.Dense(7), X)


@pytest.mark.parametrize('features,axis', [((3, 6), -1), (7, (-2, -1)), ((2, 3), (-3, -2, -1))])
def test_dense_general_is_flax_dense_general(features, axis):
  _same(layers.DenseGeneral(features, axis=axis), nn.DenseGeneral(features, axis=axis), X)


@pytest.mark.parametrize('axis', [1, (-3, -1), (2, 3)])
def test_dense_general_refuses_other_axes(axis):
  with pytest.raises(ValueError, match='trailing axes given as negative indices'):
    layers.DenseGeneral(4, axis=axis).init(jax.random.key(0), X)


def test_attend_is_embed_attend():
  embed = nn.Embed(11, 5)
  variables = embed.init(jax.random.key(0), jnp.zeros((1,), jnp.int32))
  ours = embed.apply(variables, X, method=lambda module, q: layers.attend(module, q))
  np.testing.assert_allclose(ours, embed.apply(variables, X, method=nn.Embed.attend), rtol=1e-6)
