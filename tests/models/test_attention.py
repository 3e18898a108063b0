"""Properties of the attention scores: masking, normalisation, and how the scores relate."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnjax.models.attention import SCORES, Attention, masked_softmax, window

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


# Local attention (Luong et al. 2015, sec. 3.2). STEPS: the target position t of each query.
STEPS = jnp.broadcast_to(jnp.arange(T), (B, T))
LONG_S = 12  # a source longer than the window, so that the window cuts it


def _long_inputs():
  rng = np.random.default_rng(1)
  keys = jnp.asarray(rng.normal(size=(B, LONG_S, D)), jnp.float32)
  query = jnp.asarray(rng.normal(scale=3.0, size=(B, T, D)), jnp.float32)
  mask = jnp.asarray(np.arange(LONG_S)[None] < np.array([[9], [12]]))
  return query, keys, mask


def _local(score, local, half_width, query, keys, mask, step=STEPS):
  attention = Attention(score, D, local=local, half_width=half_width)
  variables = attention.init(jax.random.key(0), query, keys, mask, step)
  (context, alignment) = attention.apply(variables, query, keys, mask, step)
  position = attention.apply(variables, query, mask, step, method='aligned_position')
  return variables, context, alignment, position


@pytest.mark.parametrize('score', SCORES)
@pytest.mark.parametrize('local', ['m', 'p'])
def test_local_weights_are_zero_outside_the_window_and_on_padding(score, local):
  query, keys, mask = _long_inputs()
  _, context, alignment, position = _local(score, local, 2, query, keys, mask)
  alignment, position = np.asarray(alignment), np.asarray(position)  # [B, T, S], [B, T]
  outside = np.abs(np.arange(LONG_S)[None, None] - position[..., None]) > 2
  padded = np.broadcast_to(~np.asarray(mask)[:, None], alignment.shape)
  assert np.all(alignment[outside | padded] == 0.0)
  assert np.all(alignment.sum(-1) > 0.0)  # every window holds a real position
  assert np.all(alignment.sum(-1) <= 1.0 + 1e-6)
  if local == 'm':
    np.testing.assert_allclose(alignment.sum(-1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(context, np.einsum('bts,bsd->btd', alignment, keys), rtol=1e-5, atol=1e-6)


def test_local_m_centres_on_the_target_step_clipped_to_the_source():
  query, keys, mask = _long_inputs()
  steps = jnp.array([[0, 4, 20], [0, 11, 30]])  # past the end: the last real position
  _, _, _, position = _local('dot', 'm', 2, query, keys, mask, steps)
  np.testing.assert_array_equal(position, [[0, 4, 8], [0, 11, 11]])


@pytest.mark.parametrize('score', SCORES)
def test_local_m_with_a_window_over_the_whole_source_is_global_attention(score):
  query, keys, mask = _inputs()
  variables, (context, alignment) = _run(Attention(score, D), query, keys, mask)
  local = Attention(score, D, local='m', half_width=S)
  local_context, local_alignment = local.apply(variables, query, keys, mask, STEPS)
  np.testing.assert_allclose(local_alignment, alignment, rtol=1e-6)
  np.testing.assert_allclose(local_context, context, rtol=1e-6)


def test_local_p_position_lies_in_zero_to_source_length():
  query, keys, mask = _long_inputs()
  for scale in (0.1, 10.0, 1000.0):  # saturating the sigmoid both ways
    _, _, _, position = _local('general', 'p', 3, query * scale, keys, mask)
    lengths = np.asarray(mask).sum(-1)[:, None]
    assert np.all(np.asarray(position) >= 0.0) and np.all(np.asarray(position) <= lengths)


def test_local_p_weights_are_the_window_softmax_times_a_gaussian_peaking_at_p_t():
  position = jnp.array([3.3, 7.0])
  inside, gaussian = window(position, LONG_S, 4)
  gaussian = np.asarray(gaussian)
  np.testing.assert_array_equal(np.argmax(gaussian, -1), [3, 7])
  np.testing.assert_allclose(gaussian[1, 7], 1.0)
  np.testing.assert_allclose(gaussian[1, 9], np.exp(-4 / (2 * 2.0 ** 2)), rtol=1e-6)  # sigma = D / 2
  np.testing.assert_array_equal(np.asarray(inside)[1], np.abs(np.arange(LONG_S) - 7) <= 4)
  query, keys, mask = _long_inputs()
  variables, _, alignment, p_t = _local('general', 'p', 3, query, keys, mask)
  global_attention = Attention('general', D)
  scores_only = {'params': {'key_projection': variables['params']['key_projection']}}
  _, full = global_attention.apply(scores_only, query, keys, mask)
  inside, gaussian = window(p_t, LONG_S, 3)
  in_window = np.where(inside & np.asarray(mask)[:, None], np.asarray(full), 0.0)
  expected = in_window / in_window.sum(-1, keepdims=True) * np.asarray(gaussian)
  np.testing.assert_allclose(alignment, expected, rtol=1e-5, atol=1e-7)


def test_local_m_needs_the_target_step():
  query, keys, mask = _inputs()
  with pytest.raises(ValueError, match='local-m attention needs the target position'):
    Attention('dot', D, local='m').init(jax.random.key(0), query, keys, mask)
