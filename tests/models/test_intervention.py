"""Interventions on the attention (`attnjax.models.intervention`): the identity leaves a model
unchanged; uniform and gold rows are distributions over the real source positions; permute
shuffles the model's own weights; decoding under an intervention is teacher forcing under it,
step by step; a head whose output the parameters zero has no importance."""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from attnjax.models import Intervention, build, intervene
from attnjax.models import intervention as intervention_lib
from tests.helpers import random_variables
from tests.models.test_contract import CONFIGS, SRC, TGT_IN, vocab_sizes

ATTENTIVE = ['luong-feeding-general-bilstm', 'transformer-pre', 'mingru-luong-bi-2layers-associative',
             *(pytest.param(name, marks=pytest.mark.slow)
               for name in ('bahdanau-bilstm-2layers', 'luong-dot-bilstm-odd', 'luong-local-p-general'))]
# decoding equals teacher forcing under each kind: one family each in `make test`, all in `make check`
FAST_DECODED = [('bahdanau-bilstm-2layers', 'permute'), ('transformer-pre', 'permute'),
                ('luong-feeding-general-bilstm', 'uniform'),
                ('mingru-luong-bi-2layers-associative', 'permute')]
DECODED = [*FAST_DECODED,
           *(pytest.param(name, kind, marks=pytest.mark.slow)
             for name in ('bahdanau-bilstm-2layers', 'luong-feeding-general-bilstm', 'luong-dot-bilstm-odd',
                          'luong-local-p-general', 'mingru-luong-bi-2layers-associative',
                          'transformer-pre')
             for kind in ('uniform', 'permute') if (name, kind) not in FAST_DECODED)]
REAL = np.asarray(SRC != 0)  # [B, S]
B, S = SRC.shape
T = TGT_IN.shape[1]


def make(name):
  cfg = ml_collections.ConfigDict(CONFIGS[name])
  model = build(cfg, *vocab_sizes(cfg))
  return model, random_variables(model, SRC, TGT_IN)


def forced(model, variables, **kwargs):
  """Teacher-forced logits [B, T, V] and cross-attention [B, T, L, H, S]."""
  logits, inter = model.apply(variables, SRC, TGT_IN, mutable=['intermediates'], **kwargs)
  return np.asarray(logits), np.asarray(inter['intermediates']['cross_attention'][0])


def step_wise(model, variables):
  """The same, decoded one step at a time from the reference's tokens."""
  state = model.apply(variables, SRC, T, method=model.init_decode_state)

  def step(state, tokens):
    (logits, state), inter = model.apply(variables, tokens, state, method=model.decode_step,
                                         mutable=['intermediates'])
    return state, (logits, inter['intermediates']['cross_attention'][0])

  _, (logits, cross) = jax.jit(lambda state: jax.lax.scan(step, state, TGT_IN.T))(state)
  return np.asarray(logits).swapaxes(0, 1), np.asarray(cross).swapaxes(0, 1)


def real_rows(cross):
  """The attention's rows [B, T, L, H, S], checked to be 0 on padding, summed over the source."""
  for b in range(B):
    assert np.all(cross[b][..., ~REAL[b]] == 0), b
  return cross.sum(-1)


@pytest.mark.parametrize('name,kind', DECODED)
def test_decoding_under_an_intervention_equals_teacher_forcing_under_it(name, kind):
  model, variables = make(name)
  replaced = intervene(model, Intervention(kind, seed=3))
  logits, cross = forced(replaced, variables)
  step_logits, step_cross = step_wise(replaced, variables)
  np.testing.assert_allclose(step_logits, logits, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(step_cross, cross, atol=1e-5)
  own_logits, own_cross = forced(model, variables)
  assert not np.allclose(cross, own_cross, atol=1e-5)  # the weights used are not the model's
  assert not np.array_equal(logits, own_logits)


@pytest.mark.parametrize('name', ATTENTIVE)
def test_uniform_rows_spread_evenly_over_the_real_positions(name):
  model, variables = make(name)
  _, cross = forced(intervene(model, Intervention('uniform')), variables)
  np.testing.assert_allclose(real_rows(cross), 1.0, atol=1e-6)
  for b in range(B):
    np.testing.assert_allclose(cross[b][..., REAL[b]], 1.0 / REAL[b].sum(), atol=1e-6)


@pytest.mark.parametrize('name', ATTENTIVE)
def test_permute_shuffles_the_models_own_weights_within_the_real_positions(name):
  model, variables = make(name)
  _, own = forced(model, variables)
  _, cross = forced(intervene(model, Intervention('permute', seed=1)), variables)
  _, other = forced(intervene(model, Intervention('permute', seed=2)), variables)
  real_rows(cross)
  for b in range(B):  # at the first step, in the first layer, nothing before was replaced
    mine, theirs = cross[b, 0, 0][..., REAL[b]], own[b, 0, 0][..., REAL[b]]
    np.testing.assert_allclose(np.sort(mine, -1), np.sort(theirs, -1), atol=1e-6)
  assert not np.allclose(cross, own) and not np.allclose(cross, other)  # seeded, and not the identity


@pytest.mark.parametrize('name', ATTENTIVE)
def test_gold_rows_replace_the_models_where_given_and_keep_them_where_empty(name):
  model, variables = make(name)
  rng = np.random.default_rng(0)
  gold = rng.random((B, T, S)).astype(np.float32) * REAL[:, None, :]
  gold /= gold.sum(-1, keepdims=True)
  gold[:, 0] = 0.0  # the first target piece has no link: the model's own weights stay
  _, own = forced(model, variables)
  _, cross = forced(intervene(model, Intervention('gold')), variables, gold=jnp.asarray(gold))
  np.testing.assert_allclose(real_rows(cross)[:, 1:], 1.0, atol=1e-5)
  np.testing.assert_allclose(cross[:, 1:], np.broadcast_to(gold[:, 1:, None, None, :],
                                                           cross[:, 1:].shape), atol=1e-6)
  np.testing.assert_allclose(cross[:, 0], own[:, 0], atol=1e-5)  # nothing before it was replaced


def test_gold_in_chosen_layers_leaves_the_other_layers_own():
  model, variables = make('transformer-pre')  # two decoder layers
  gold = np.zeros((B, T, S), np.float32)
  gold[..., 0] = 1.0
  _, own = forced(model, variables)
  _, cross = forced(intervene(model, Intervention('gold', layers=(1,))), variables, gold=jnp.asarray(gold))
  np.testing.assert_allclose(cross[:, :, 1], np.broadcast_to(gold[:, :, None, :], cross[:, :, 1].shape))
  assert not np.allclose(cross[:, :, 0], cross[:, :, 1])
  with pytest.raises(ValueError, match='decoder layers'):
    intervene(model, Intervention('gold', layers=(2,)))


@pytest.mark.parametrize('name', ['luong-feeding-general-bilstm', 'transformer-pre'])
def test_the_identity_permutation_and_open_gates_leave_the_model_unchanged(name, monkeypatch):
  model, variables = make(name)
  own_logits, own_cross = forced(model, variables)
  # Bits that rise along the source draw the real positions in their own order: the identity.
  monkeypatch.setattr(intervention_lib, '_random_bits',
                      lambda seed, shape, step: jax.lax.broadcasted_iota(jnp.uint32, shape, len(shape) - 1))
  logits, cross = forced(intervene(model, Intervention('permute')), variables)
  np.testing.assert_allclose(logits, own_logits, atol=1e-6)
  np.testing.assert_allclose(cross, own_cross, atol=1e-6)
  if name.startswith('transformer'):
    gates = intervention_lib.gates(model.num_encoder_layers, model.num_decoder_layers, model.num_heads)
    logits, _ = forced(model, {**variables, 'gates': gates})
    np.testing.assert_allclose(logits, own_logits, atol=1e-6)


def test_a_closed_gate_removes_its_head_and_no_other():
  model, variables = make('transformer-pre')
  own, _ = forced(model, variables)
  off = intervention_lib.gates(model.num_encoder_layers, model.num_decoder_layers, model.num_heads,
                               {'cross': [(0, 1)]})
  gated, _ = forced(model, {**variables, 'gates': off})
  # The same as the head's slice of the output projection set to zero.
  params = jax.tree_util.tree_map(lambda x: x, variables['params'])
  kernel = params['decoder_layers_0']['cross_attention']['out']['kernel']
  params['decoder_layers_0']['cross_attention']['out']['kernel'] = kernel.at[1].set(0.0)
  zeroed, _ = forced(model, {'params': params})
  np.testing.assert_allclose(gated, zeroed, atol=1e-5)
  assert not np.allclose(gated, own, atol=1e-4)
  with pytest.raises(ValueError, match='does not exist'):
    intervention_lib.gates(1, 2, model.num_heads, {'cross': [(2, 0)]})


def test_a_head_zeroed_in_the_parameters_has_no_importance():
  model, variables = make('transformer-pre')
  params = jax.tree_util.tree_map(lambda x: x, variables['params'])
  kernel = params['decoder_layers_1']['cross_attention']['out']['kernel']  # [H, Dh, d_model]
  params['decoder_layers_1']['cross_attention']['out']['kernel'] = kernel.at[0].set(0.0)
  tgt_out = jnp.concatenate([TGT_IN[:, 1:], jnp.full((B, 1), 2, jnp.int32)], axis=1)

  def loss(gates):
    logits = model.apply({'params': params, 'gates': gates}, SRC, TGT_IN)
    return -jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(tgt_out, logits.shape[-1]))

  ones = intervention_lib.gates(model.num_encoder_layers, model.num_decoder_layers, model.num_heads)
  importance = intervention_lib.to_matrices(jax.grad(loss)(ones))
  assert importance['cross'][1, 0] == 0.0
  for kind, matrix in importance.items():
    others = np.ones(matrix.shape, bool)
    if kind == 'cross':
      others[1, 0] = False
    assert np.all(np.asarray(matrix)[others] != 0), kind


def test_interventions_are_refused_where_there_is_no_attention():
  for name in ('seq2seq-reversed-lstm', 'minlstm-none-log-associative'):
    model, _ = make(name)
    with pytest.raises(ValueError, match='no attention'):
      intervene(model, Intervention('uniform'))
  with pytest.raises(ValueError, match='not one of'):
    Intervention('shuffle')
  assert dataclasses.replace(Intervention('permute'), seed=2).seed == 2
