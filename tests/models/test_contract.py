"""The contract every family implements, so that decoding, evaluation and plots never branch
on the family: step-wise decoding equals teacher forcing, decoding states keep a batch axis
and their structure, attention maps are sown under the same keys, every parameter learns,
bfloat16 compute stays close to float32, and build() rejects impossible configs.

Parameters are drawn with numpy from the shapes `jax.eval_shape(model.init)` gives, which
keeps these tests fast (compiling the real initialisers costs seconds per model on CPU).
"""

import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from attnjax.config import min_rnn_model, rnn_model, transformer_model
from attnjax.models import attends, build
from tests.helpers import random_variables

RNN = {**rnn_model(decoder='seq2seq').to_dict(), 'embed_dim': 8, 'hidden_dim': 10,
       'bidirectional': False}
TRANSFORMER = {**transformer_model('tiny').to_dict(), 'd_model': 16, 'd_ff': 24,
               'num_decoder_layers': 2, 'attention_dropout': 0.1, 'share_embeddings': False,
               'max_len': 16}
MIN = {**min_rnn_model().to_dict(), 'embed_dim': 8, 'hidden_dim': 10, 'num_layers': 1}
CONFIGS = {
    'seq2seq-bigru-2layers': {**RNN, 'cell': 'gru', 'bidirectional': True, 'num_layers': 2},
    'seq2seq-reversed-lstm': {**RNN, 'reverse_source': True},
    'encdec-bilstm': {**RNN, 'decoder': 'encdec', 'bidirectional': True},
    'encdec-reversed-gru-2layers': {**RNN, 'decoder': 'encdec', 'cell': 'gru', 'num_layers': 2,
                                    'reverse_source': True},
    'bahdanau-bilstm-2layers': {**RNN, 'decoder': 'bahdanau', 'bidirectional': True,
                                'num_layers': 2},
    'luong-feeding-general-bilstm': {**RNN, 'decoder': 'luong', 'bidirectional': True},
    'luong-feeding-concat-gru-2layers': {**RNN, 'decoder': 'luong', 'score': 'concat',
                                         'cell': 'gru', 'num_layers': 2},
    'luong-dot-bilstm-odd': {**RNN, 'decoder': 'luong', 'score': 'dot', 'input_feeding': False,
                             'bidirectional': True, 'hidden_dim': 9},
    'luong-local-m-feeding': {**RNN, 'decoder': 'luong', 'local': 'm', 'local_window': 1},
    'luong-local-p-general': {**RNN, 'decoder': 'luong', 'local': 'p', 'local_window': 2,
                              'input_feeding': False, 'bidirectional': True},
    'luong-local-m-concat-gru': {**RNN, 'decoder': 'luong', 'score': 'concat', 'cell': 'gru',
                                 'local': 'm', 'local_window': 2, 'input_feeding': False},
    'mingru-luong-bi-2layers-associative': {**MIN, 'num_layers': 2, 'scan': 'associative'},
    'minlstm-none-log-associative': {**MIN, 'cell': 'lstm', 'attention': 'none',
                                     'bidirectional': False, 'log_space': True,
                                     'scan': 'associative'},
    'minlstm-luong-dot-bi-log': {**MIN, 'cell': 'lstm', 'score': 'dot', 'log_space': True},
    'mingru-none-bi-2layers': {**MIN, 'attention': 'none', 'num_layers': 2},
    'transformer-pre': TRANSFORMER,
    'transformer-post-learned-shared': {**TRANSFORMER, 'norm': 'post', 'positions': 'learned',
                                        'share_embeddings': True},
}
SRC = jnp.array([[5, 6, 7, 2, 0, 0], [4, 5, 6, 7, 8, 2], [9, 2, 0, 0, 0, 0]], jnp.int32)
TGT_IN = jnp.array([[1, 5, 6, 7, 0], [1, 4, 4, 5, 6], [1, 8, 0, 0, 0]], jnp.int32)
TGT_OUT = jnp.array([[5, 6, 7, 2, 0], [4, 4, 5, 6, 2], [8, 2, 0, 0, 0]], jnp.int32)
B, S = SRC.shape
T = TGT_IN.shape[1]


def vocab_sizes(cfg):
  return (17, 17) if cfg.get('share_embeddings') else (13, 17)


def cross_entropy(logits):
  return -jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(TGT_OUT, logits.shape[-1]))


SLOW = ('seq2seq-reversed-lstm', 'encdec-reversed-gru-2layers', 'luong-feeding-concat-gru-2layers',
        'luong-local-m-concat-gru', 'luong-dot-bilstm-odd', 'luong-local-p-general',
        'minlstm-luong-dot-bi-log', 'mingru-none-bi-2layers')  # variations that `make check` adds


@pytest.fixture(scope='module', params=[pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
                                        for name in CONFIGS])
def run(request):
  """Teacher forcing (with gradients) and step-wise decoding of the same batch."""
  cfg = ml_collections.ConfigDict(CONFIGS[request.param])
  model = build(cfg, *vocab_sizes(cfg))
  variables = random_variables(model, SRC, TGT_IN)

  @jax.jit
  def teacher_forcing(params):
    def loss(params):
      logits, inter = model.apply({'params': params}, SRC, TGT_IN, mutable=['intermediates'])
      return cross_entropy(logits), (logits, inter.get('intermediates', {}))
    return jax.value_and_grad(loss, has_aux=True)(params)

  @jax.jit
  def decode(variables):
    state = model.apply(variables, SRC, T, method=model.init_decode_state)

    def step(state, tokens):  # lax.scan also checks that the state keeps its structure
      (logits, state), inter = model.apply(
          variables, tokens, state, method=model.decode_step, mutable=['intermediates'])
      cross = inter['intermediates']['cross_attention'][0] if inter else None
      return state, (logits, cross)

    _, (logits, cross) = jax.lax.scan(step, state, TGT_IN.T)
    return state, logits.swapaxes(0, 1), None if cross is None else cross.swapaxes(0, 1)

  (_, (logits, intermediates)), grads = teacher_forcing(variables['params'])
  state, step_logits, step_cross = decode(variables)
  return types.SimpleNamespace(
      cfg=cfg, model=model, variables=variables, logits=logits,
      intermediates=intermediates, grads=grads, state=state, step_logits=step_logits,
      step_cross=step_cross)


def test_step_decoding_reproduces_teacher_forcing(run):
  assert run.logits.shape == run.step_logits.shape == (B, T, 17)
  assert run.logits.dtype == run.step_logits.dtype == jnp.float32
  np.testing.assert_allclose(run.step_logits, run.logits, atol=1e-5, rtol=1e-5)


def test_step_cross_attention_equals_teacher_forced(run):
  if not attends(run.cfg):  # what a config says of its model's attention is what the model sows
    assert run.intermediates == {} and run.step_cross is None  # no alignment to show
    return
  cross = run.intermediates['cross_attention'][0]  # [B, T, L, H, S]
  layers, heads = ((1, 1) if run.cfg.family != 'transformer'
                   else (run.cfg.num_decoder_layers, run.cfg.num_heads))
  assert cross.shape == (B, T, layers, heads, S)
  np.testing.assert_allclose(run.step_cross, cross, atol=1e-5)


@pytest.mark.parametrize('run', ['transformer-pre', 'transformer-post-learned-shared'],
                         indirect=True)
def test_transformer_sows_self_attention(run):
  heads = run.cfg.num_heads
  assert (run.intermediates['decoder_self_attention'][0].shape
          == (B, T, run.cfg.num_decoder_layers, heads, T))
  assert (run.intermediates['encoder_self_attention'][0].shape
          == (B, S, run.cfg.num_encoder_layers, heads, S))


def test_every_state_leaf_has_the_batch_axis(run):
  for path, leaf in jax.tree_util.tree_leaves_with_path(run.state):
    assert leaf.shape[0] == B, jax.tree_util.keystr(path)


def test_gradients_are_finite_and_nonzero_for_every_parameter(run):
  for path, grad in jax.tree_util.tree_leaves_with_path(run.grads):
    name = jax.tree_util.keystr(path)
    assert np.all(np.isfinite(grad)), name
    assert np.any(grad != 0), name


@pytest.mark.parametrize('run', ['seq2seq-bigru-2layers', 'bahdanau-bilstm-2layers',
                                 'luong-dot-bilstm-odd', 'mingru-luong-bi-2layers-associative',
                                 'transformer-pre'], indirect=True)
def test_bfloat16_compute_stays_close_to_float32(run):  # one config per decoder, for speed
  model = build(ml_collections.ConfigDict({**run.cfg, 'dtype': 'bfloat16'}),
                *vocab_sizes(run.cfg))
  logits = jax.jit(model.apply)(run.variables, SRC, TGT_IN)
  assert logits.dtype == jnp.float32
  error = jnp.max(jnp.abs(logits - run.logits)) / jnp.max(jnp.abs(run.logits))
  assert error < 0.05


@pytest.mark.parametrize('run', ['luong-feeding-concat-gru-2layers',
                                 'mingru-luong-bi-2layers-associative', 'transformer-pre'],
                         indirect=True)
def test_dropout_only_in_training(run):  # one config per family, for speed
  apply = jax.jit(lambda key: run.model.apply(run.variables, SRC, TGT_IN, train=True,
                                              rngs={'dropout': key}))
  key = lambda seed: jax.random.key(seed, impl='rbg')  # compiles faster than threefry on CPU
  train_logits = apply(key(0))
  assert not np.allclose(train_logits, run.logits)  # run.logits: train=False, no rng
  np.testing.assert_array_equal(apply(key(0)), train_logits)
  assert not np.allclose(apply(key(1)), train_logits)


@pytest.mark.parametrize('family', ['rnn', 'transformer', 'minrnn'])
def test_parameters_stay_float32_under_bfloat16(family):
  cfg = {**{'rnn': RNN, 'transformer': TRANSFORMER, 'minrnn': MIN}[family], 'dtype': 'bfloat16'}
  model = build(ml_collections.ConfigDict(cfg), 17, 17)
  shapes = jax.eval_shape(model.init, jax.random.key(0), SRC, TGT_IN)
  assert {leaf.dtype for leaf in jax.tree.leaves(shapes)} == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize('overrides, vocab, field', [
    ({**RNN, 'family': 'cnn'}, (13, 17), 'model.family'),
    ({**RNN, 'dtype': 'float16'}, (13, 17), 'model.dtype'),
    ({**RNN, 'cell': 'rnn'}, (13, 17), 'model.cell'),
    ({**RNN, 'decoder': 'pointer'}, (13, 17), 'model.decoder'),
    ({**RNN, 'decoder': 'bahdanau', 'reverse_source': True}, (13, 17), 'model.reverse_source'),
    ({**RNN, 'decoder': 'luong', 'score': 'cosine'}, (13, 17), 'model.score'),
    ({**RNN, 'decoder': 'luong', 'local': 'q'}, (13, 17), 'model.local'),
    ({**RNN, 'decoder': 'luong', 'local': 'p', 'local_window': 0}, (13, 17), 'model.local_window'),
    ({**RNN, 'hidden_dim': 0}, (13, 17), 'model.hidden_dim'),
    ({**RNN, 'bidirectional': True, 'hidden_dim': 1}, (13, 17), 'model.hidden_dim'),
    ({**RNN, 'dropout': 1.0}, (13, 17), 'model.dropout'),
    ({key: value for key, value in RNN.items() if key != 'embed_dim'}, (13, 17),
     'model.embed_dim'),
    ({**TRANSFORMER, 'd_model': 250, 'num_heads': 4}, (13, 17), 'model.d_model=250'),
    ({**TRANSFORMER, 'd_model': 15, 'num_heads': 3}, (13, 17), 'model.d_model=15'),
    ({**TRANSFORMER, 'norm': 'sandwich'}, (13, 17), 'model.norm'),
    ({**TRANSFORMER, 'positions': 'rotary'}, (13, 17), 'model.positions'),
    ({**TRANSFORMER, 'share_embeddings': True}, (13, 17), 'model.share_embeddings'),
    (TRANSFORMER, (3, 17), 'source vocabulary'),
    ({**MIN, 'cell': 'rnn'}, (13, 17), 'model.cell'),
    ({**MIN, 'attention': 'bahdanau'}, (13, 17), 'model.attention'),
    ({**MIN, 'scan': 'parallel'}, (13, 17), 'model.scan'),
    ({**MIN, 'score': 'cosine'}, (13, 17), 'model.score'),
    ({**MIN, 'num_layers': 0}, (13, 17), 'model.num_layers'),
    ({key: value for key, value in MIN.items() if key != 'log_space'}, (13, 17),
     'model.log_space'),
])
def test_build_rejects_impossible_configs(overrides, vocab, field):
  with pytest.raises(ValueError, match=field.replace('.', r'\.')):
    build(ml_collections.ConfigDict(overrides), *vocab)


def test_build_ignores_fields_of_other_families():
  model = build(ml_collections.ConfigDict({**TRANSFORMER, **RNN, 'family': 'transformer',
                                           'dropout': 0.1, 'score': 'nonsense'}), 13, 17)
  assert type(model).__name__ == 'Transformer'
  assert model.d_model == 16 and model.dtype == jnp.float32
  assert build(ml_collections.ConfigDict({**RNN, 'score': 'nonsense'}), 13, 17).cell == 'lstm'


def test_a_model_without_attention_is_named_by_the_field_that_says_so():
  from attnjax.models import attention_setting
  assert attention_setting(rnn_model(decoder="seq2seq")) == "model.decoder='seq2seq'"
  assert attention_setting(min_rnn_model("gru", "none")) == "model.attention='none'"


@pytest.mark.parametrize('family', ['rnn', 'minrnn', 'transformer'])
def test_a_familys_config_section_is_the_one_home_of_its_models_fields(family):
  """Every field of a family's model class comes from its config section by the same name and
  has no default of its own to disagree with the config's; every field of the section (but
  `family` and `dtype`, which picks the class and its precision) reaches the model; and a
  field added since older workdirs were trained is one of them."""
  import dataclasses
  from attnjax import config as config_lib, models
  section, module = {'rnn': (rnn_model(), models.RNNSeq2Seq), 'minrnn': (min_rnn_model(), models.MinRNNSeq2Seq),
                     'transformer': (transformer_model(), models.Transformer)}[family]
  fields = models.config_fields(module)
  assert set(section) - {'family', 'dtype'} == set(fields)
  defaults = {f.name for f in dataclasses.fields(module) if f.default is not dataclasses.MISSING}
  assert not defaults & {*fields, 'dtype'}, f'{module.__name__} has defaults of its own for {defaults & set(fields)}'
  assert set(config_lib.ADDED_MODEL_FIELDS.get(family, {})) <= set(fields)
  model = build(section, 40, 40)  # and a section's value is the model's, field by field
  assert all(getattr(model, field) == section[field] for field in fields)
