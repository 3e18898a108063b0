"""Properties of the attention scores: masking, normalisation, and how the scores relate."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnjax.models.attention import SCORES, Attention, masked_softmax

B, S, T, D = 2, 5, 3, 8
LENGTHS = np.array([3, 5])  # the first row has two padded positions


def _inputs(key_dim=D, query_dim=D):
  rng = np.random.default_rng(0)
  keys = jnp.asarray(rng.normal(size=(B, S, key_dim)), jnp.float32)
  query = jnp.asarray(rng.normal(size=(B, T, query_dim)), jnp.float32)
  mask = jnp.asarray(np.arange(S)[None] < LENGTHS[:, None])
  return query, keys, mask


def _run(attention, query, keys, mask):
  variables = attention.init(jax.random.key(0), query, keys, mask)
  return variables, attention.apply(variables, query, keys, mask)


@pytest.mark.parametrize('score', SCORES)
@pytest.mark.parametrize('per_step', [False, True], ids=['one-query', 'query-per-step'])
def test_alignment_is_a_distribution_over_real_positions(score, per_step):
  query, keys, mask = _inputs()
  query = query if per_step else query[:, 0]
  _, (context, alignment) = _run(Attention(score, D), query, keys, mask)
  assert context.shape == query.shape[:-1] + (D,)
  assert alignment.shape == query.shape[:-1] + (S,)
  padded = ~np.asarray(mask)
  if per_step:
    padded = np.broadcast_to(padded[:, None], alignment.shape)
  assert np.all(np.asarray(alignment)[padded] == 0.0)
  np.testing.assert_allclose(alignment.sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize('score', SCORES)
def test_context_is_alignment_times_keys(score):
  query, keys, mask = _inputs()
  _, (context, alignment) = _run(Attention(score, D), query, keys, mask)
  np.testing.assert_allclose(context, jnp.einsum('bts,bsd->btd', alignment, keys),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('score', SCORES)
def test_prepared_keys_and_per_step_queries_match_one_batched_call(score):
  query, keys, mask = _inputs()
  attention = Attention(score, D)
  variables, (context, alignment) = _run(attention, query, keys, mask)
  prepared = attention.apply(variables, keys, method=attention.prepare_keys)
  for t in range(T):
    step_context, step_alignment = attention.apply(
        variables, query[:, t], keys, prepared, mask, method=attention.attend)
    np.testing.assert_allclose(step_context, context[:, t], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(step_alignment, alignment[:, t], rtol=1e-5, atol=1e-6)


def test_general_with_identity_is_dot():
  query, keys, mask = _inputs()
  general = Attention('general', D)
  variables = general.init(jax.random.key(0), query, keys, mask)
  variables = jax.tree.map(lambda w: jnp.eye(D), variables)  # W_a = I
  _, (dot_context, dot_alignment) = _run(Attention('dot', D), query, keys, mask)
  context, alignment = general.apply(variables, query, keys, mask)
  np.testing.assert_allclose(alignment, dot_alignment, rtol=1e-6)
  np.testing.assert_allclose(context, dot_context, rtol=1e-6)


def test_scaled_dot_is_softmax_of_dot_over_sqrt_d():
  query, keys, mask = _inputs()
  _, (_, alignment) = _run(Attention('scaled_dot', D), query, keys, mask)
  score = jnp.einsum('btd,bsd->bts', query, keys) / math.sqrt(D)
  expected = jax.nn.softmax(jnp.where(mask[:, None], score, -jnp.inf), axis=-1)
  np.testing.assert_allclose(alignment, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('score', ['dot', 'scaled_dot'])
def test_dot_scores_project_keys_of_another_size(score):
  query, keys, mask = _inputs(key_dim=6)
  variables, (context, alignment) = _run(Attention(score, D), query, keys, mask)
  assert variables['params']['key_projection']['kernel'].shape == (6, D)
  assert context.shape == (B, T, 6)  # a mix of the original keys
  np.testing.assert_allclose(alignment.sum(-1), 1.0, rtol=1e-6)


def test_fully_masked_row_gives_zeros_not_nan():
  weights = masked_softmax(jnp.ones((2, 4)), jnp.array([[True] * 4, [False] * 4]))
  np.testing.assert_array_equal(weights[1], 0.0)
  np.testing.assert_allclose(weights[0], 0.25)


def test_concat_is_luong_concat_and_the_same_function_as_additive():
  """v_a^T tanh(W_a [s; h_j]) with W_a = [W_1, W_2] is Bahdanau's v_a^T tanh(W_1 s + W_2 h_j)."""
  query, keys, mask = _inputs()
  variables, (_, alignment) = _run(Attention('concat', D), query, keys, mask)
  params = variables['params']
  w_a = jnp.concatenate([params['query_projection']['kernel'],
                         params['key_projection']['kernel']])  # [2D, width]
  pairs = jnp.concatenate([jnp.broadcast_to(query[:, :, None], (B, T, S, D)),
                           jnp.broadcast_to(keys[:, None], (B, T, S, D))], -1)  # [B, T, S, 2D]
  score = (jnp.tanh(pairs @ w_a) @ params['v']['kernel'])[..., 0]
  expected = jax.nn.softmax(jnp.where(mask[:, None], score, -jnp.inf), axis=-1)
  np.testing.assert_allclose(alignment, expected, rtol=1e-5, atol=1e-7)
  # Same parameter names and shapes, so the same seed gives the same model, number for number.
  _, (_, additive_alignment) = _run(Attention('additive', D), query, keys, mask)
  np.testing.assert_array_equal(additive_alignment, alignment)
