"""The token-flattening dense layers and the embedding are Flax's layers: same parameters,
values and gradients."""

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


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16, jnp.dtype('bfloat16'), None])
def test_embed_is_flax_embed(dtype):
  """The same parameter and rows; the table's gradient is the same sum, exact in float32 and,
  in bfloat16, within the rounding of Flax's bfloat16 sum of a repeated id's rows."""
  ids = jnp.array([[1, 4, 4, 9], [1, 0, 4, 2], [1, 1, 7, 10]])  # repeated ids, as BOS is
  ours, theirs = layers.Embed(11, 5, dtype=dtype), nn.Embed(11, 5, dtype=dtype)
  variables = ours.init(jax.random.key(0), ids)
  jax.tree.map(np.testing.assert_array_equal, variables, theirs.init(jax.random.key(0), ids))
  out = ours.apply(variables, ids)
  assert out.dtype == (dtype or jnp.float32) and out.shape == (3, 4, 5)
  np.testing.assert_array_equal(out, theirs.apply(variables, ids))
  cot = jax.random.normal(jax.random.key(2), (3, 4, 5)).astype(dtype or jnp.float32)
  coarse = jnp.dtype(dtype or jnp.float32) == jnp.bfloat16  # Flax sums in bfloat16
  grad = lambda module: jax.vjp(lambda v: module.apply(v, ids), variables)[1](cot)[0]
  ours_grad, theirs_grad = grad(ours), grad(theirs)
  exact = np.zeros((11, 5), np.float32)
  np.add.at(exact, np.asarray(ids).reshape(-1), np.asarray(cot, np.float32).reshape(-1, 5))
  np.testing.assert_allclose(ours_grad['params']['embedding'], exact, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(theirs_grad['params']['embedding'], exact,
                             rtol=2e-2 if coarse else 1e-6, atol=2e-2 if coarse else 1e-6)
  with pytest.raises(ValueError, match='integer ids'):
    ours.apply(variables, ids.astype(jnp.float32))


@pytest.mark.parametrize('embed', [nn.Embed(11, 5), layers.Embed(11, 5)])
def test_attend_is_embed_attend(embed):
  variables = embed.init(jax.random.key(0), jnp.zeros((1,), jnp.int32))
  ours = embed.apply(variables, X, method=lambda module, q: layers.attend(module, q))
  np.testing.assert_allclose(ours, embed.apply(variables, X, method=nn.Embed.attend), rtol=1e-6)
  assert ours.shape == X.shape[:-1] + (11,)


def _drop(rate, x, seed=0, **kwargs):
  return layers.Dropout(rate, **kwargs).apply({}, x, deterministic=False,
                                              rngs={'dropout': jax.random.key(seed)})


def _near(fraction, p, n):  # within 5 standard deviations of n Bernoulli(p) draws
  return abs(fraction - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_dropout_keeps_each_unit_with_probability_keep_and_rescales_it():
  x = jnp.ones((100, 1001))
  y = np.asarray(_drop(0.3, x))
  kept = y != 0
  np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
  assert _near(kept.mean(), 0.7, kept.size)
  # Neighbouring units (consecutive counters of the hash) are independent.
  both = (kept[:, :-1] & kept[:, 1:]).ravel()
  assert _near(both.mean(), 0.49, both.size)


def test_hashed_bits_look_uniform_and_independent_across_keys():
  bits = np.asarray(layers.hashed_bits(jax.random.key(3), (200_000,)))
  assert len(np.unique(bits)) == bits.size  # a bijection of the unit's index
  for b in range(32):  # every bit is set in half of the units
    assert _near(((bits >> b) & 1).mean(), 0.5, bits.size)
  other = np.asarray(layers.hashed_bits(jax.random.key(4), (200_000,)))
  low = (bits < 2 ** 31) & (other < 2 ** 31)  # two keys' streams agree as independent ones do
  assert _near(low.mean(), 0.25, low.size)
  # Keys that differ in one bit of one word give unrelated streams.
  key = jax.random.key_data(jax.random.key(5))
  flipped = jax.random.wrap_key_data(key.at[1].set(key[1] ^ 1))
  a = np.asarray(layers.hashed_bits(jax.random.wrap_key_data(key), (200_000,)))
  b = np.asarray(layers.hashed_bits(flipped, (200_000,)))
  assert _near(((a ^ b) & 1).mean(), 0.5, a.size)


def test_dropout_masks_differ_between_keys_and_repeat_for_one_key():
  x = jnp.ones((64, 64))
  assert not np.array_equal(_drop(0.5, x, seed=0), _drop(0.5, x, seed=1))
  np.testing.assert_array_equal(_drop(0.5, x, seed=2), _drop(0.5, x, seed=2))


def test_dropout_is_the_identity_when_deterministic_or_rate_zero():
  x = jax.random.normal(jax.random.key(0), (4, 5))
  np.testing.assert_array_equal(layers.Dropout(0.5).apply({}, x, deterministic=True), x)
  np.testing.assert_array_equal(_drop(0.0, x), x)


def test_dropout_broadcast_dims_share_one_mask():
  y = np.asarray(_drop(0.5, jnp.ones((8, 16, 4)), broadcast_dims=(2,)))
  assert (y == y[:, :, :1]).all()
  assert 0 < (y != 0).mean() < 1
