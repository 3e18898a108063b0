"""minGRU / minLSTM (attnjax/models/minrnn.py): the cells are Feng et al.'s equations; the
associative walk is the sequential one and the log-space form the plain one, forward and
backward; source padding changes nothing; the associative training step has no loop over
time; a tiny model learns to copy and decodes it, greedy and beam; trained through the
training loop, it loads and translates. Step-wise decoding against teacher forcing, the
sown alignments and interventions are in the contract's tests (test_contract.py,
test_intervention.py), which list minRNN configs beside the other families'."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from attnjax.config import ConfigError, min_rnn_model
from attnjax.models import build, init_params
from attnjax.models.minrnn import MinCell, resolve_scan, walk
from attnjax.tokens import BOS_ID, EOS_ID, PAD_ID
from tests.helpers import random_variables

SRC = jnp.array([[5, 6, 7, 2, 0], [4, 5, 6, 7, 2], [9, 2, 0, 0, 0]], jnp.int32)
TGT_IN = jnp.array([[1, 5, 6, 7], [1, 4, 4, 5], [1, 8, 0, 0]], jnp.int32)


def tiny(**overrides):
  cfg = {**min_rnn_model().to_dict(), 'embed_dim': 8, 'hidden_dim': 10, 'num_layers': 2,
         **overrides}
  return build(ml_collections.ConfigDict(cfg), 13, 17)


@pytest.mark.parametrize('log_space', [False, True], ids=['plain', 'log'])
def test_associative_walk_equals_the_recurrence_with_gradients(log_space):
  """h_t = a_t h_{t-1} + b_t, walked by lax.scan and by associative_scan: the same values and
  gradients, and the values of the recurrence written out in numpy."""
  rng = np.random.default_rng(0)
  a = jax.nn.sigmoid(jnp.asarray(rng.normal(size=(3, 37, 4)), jnp.float32))
  b = jnp.asarray(rng.normal(size=(3, 37, 4)) if not log_space else rng.uniform(0.1, 2, (3, 37, 4)),
                  jnp.float32)
  h0 = jnp.asarray(rng.uniform(0.1, 1, (3, 4)), jnp.float32)
  weights = jnp.asarray(rng.normal(size=(3, 37, 4)), jnp.float32)
  inputs = (jnp.log(a), jnp.log(b), jnp.log(h0)) if log_space else (a, b, h0)

  def loss(scan):
    out = lambda *xs: walk(*xs, scan, log_space)
    value = lambda *xs: jnp.sum(weights * (jnp.exp(out(*xs)) if log_space else out(*xs)))
    return jax.jit(jax.value_and_grad(value, argnums=(0, 1, 2)))(*inputs)

  (sequential, grads_sequential), (associative, grads_associative) = loss('sequential'), loss('associative')
  np.testing.assert_allclose(associative, sequential, rtol=1e-5)
  for g_a, g_s in zip(grads_associative, grads_sequential):
    np.testing.assert_allclose(g_a, g_s, rtol=1e-4, atol=1e-5)
  h, expected = np.asarray(h0), []
  for t in range(a.shape[1]):
    h = np.asarray(a[:, t]) * h + np.asarray(b[:, t])
    expected.append(h)
  got = walk(*inputs, 'associative', log_space)
  np.testing.assert_allclose(np.exp(got) if log_space else got, np.stack(expected, 1), rtol=1e-4)


@pytest.mark.parametrize('cell', ['gru', 'lstm'])
@pytest.mark.parametrize('log_space', [False, True], ids=['plain', 'log'])
def test_cells_follow_feng_et_al(cell, log_space):
  """minGRU: h_t = (1 - z_t) h_{t-1} + z_t g(h~_t); minLSTM: h_t = f'_t h_{t-1} + i'_t g(h~_t)
  with f' = f / (f + i), i' = i / (f + i) (Feng et al. 2024, sec. 3.1.3, 3.2.4)."""
  module = MinCell(cell, 4, log_space, 'sequential')
  x = jax.random.normal(jax.random.key(0), (2, 5, 3))
  h0 = jnp.full((2, 4), 0.3)
  variables = module.init(jax.random.key(1), x, h0)
  h, final = module.apply(variables, x, h0)
  dense = variables['params']['gates']
  k = np.asarray(x @ dense['kernel'] + dense['bias'], np.float64)
  sigmoid = lambda v: 1 / (1 + np.exp(-v))
  g = lambda v: np.where(v >= 0, v + 0.5, sigmoid(v))
  if cell == 'gru':
    k_z, k_h = np.split(k, 2, axis=-1)
    keep, take = 1 - sigmoid(k_z), sigmoid(k_z)
  else:
    k_f, k_i, k_h = np.split(k, 3, axis=-1)
    f, i = sigmoid(k_f), sigmoid(k_i)
    keep, take = f / (f + i), i / (f + i)
  state, expected = np.asarray(h0, np.float64), []
  for t in range(x.shape[1]):
    state = keep[:, t] * state + take[:, t] * g(k_h[:, t])
    expected.append(state)
  np.testing.assert_allclose(h, np.stack(expected, 1), rtol=2e-5)
  np.testing.assert_allclose(final, expected[-1], rtol=2e-5)


@pytest.mark.parametrize('cell,attention', [('gru', 'luong'),
                                            pytest.param('lstm', 'none', marks=pytest.mark.slow)])
def test_every_walk_and_form_gives_the_same_model(cell, attention):
  """associative/sequential x plain/log-space: the same logits and parameter gradients."""
  model = tiny(cell=cell, attention=attention, num_layers=1)
  variables = random_variables(model, SRC, TGT_IN)

  def run(scan, log_space):
    variant = model.clone(scan=scan, log_space=log_space)
    loss = lambda params: jnp.sum(jnp.sin(variant.apply({'params': params}, SRC, TGT_IN)))
    return jax.jit(jax.value_and_grad(loss))(variables['params'])

  reference_loss, reference_grads = run('sequential', False)
  for scan, log_space in (('associative', False), ('sequential', True), ('associative', True)):
    loss, grads = run(scan, log_space)
    np.testing.assert_allclose(loss, reference_loss, rtol=1e-5)
    for path, g_ref in jax.tree_util.tree_leaves_with_path(reference_grads):
      got = dict(jax.tree_util.tree_leaves_with_path(grads))[path]
      np.testing.assert_allclose(got, g_ref, rtol=1e-3, atol=1e-5, err_msg=jax.tree_util.keystr(path))


def test_auto_walks_sequentially_on_a_cpu_only():
  assert resolve_scan('auto') == ('sequential' if jax.default_backend() == 'cpu' else 'associative')
  assert resolve_scan('associative') == 'associative'


@pytest.mark.parametrize('cell', ['gru', 'lstm'])
def test_extra_source_padding_changes_nothing(cell):
  model = tiny(cell=cell, scan='associative')
  variables = random_variables(model, SRC, TGT_IN)
  padded_src = jnp.pad(SRC, ((0, 0), (0, 3)), constant_values=PAD_ID)

  @jax.jit
  def run(src):
    logits, inter = model.apply(variables, src, TGT_IN, mutable=['intermediates'])
    return logits, inter['intermediates']['cross_attention'][0], model.apply(variables, src, method='encode')

  logits, cross, encoded = run(SRC)
  padded_logits, padded_cross, padded_encoded = run(padded_src)
  S = SRC.shape[1]
  np.testing.assert_allclose(padded_logits, logits, atol=1e-5)
  np.testing.assert_allclose(padded_encoded['states'][:, :S], encoded['states'], atol=1e-5)
  for final, padded_final in zip(encoded['final'], padded_encoded['final']):
    np.testing.assert_allclose(padded_final, final, atol=1e-5)
  states = np.asarray(padded_encoded['states'])
  assert np.all(states[np.asarray(padded_src == PAD_ID)] == 0.0)
  source_pad = np.asarray(padded_src == PAD_ID)[:, None, None, None, :]  # [B, 1, 1, 1, S]
  assert np.all(np.asarray(padded_cross) * source_pad == 0.0)
  np.testing.assert_allclose(padded_cross[..., :S], cross, atol=1e-6)
  np.testing.assert_allclose(cross.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize('scan', ['associative', 'sequential'])
def test_only_the_sequential_training_step_loops_over_time(scan):
  """The compiled training step (forward, backward, Adam) of the associative walk has no
  `while` loop of n steps; the sequential walk's has (which shows the check can see one)."""
  from attnjax.config import base
  from attnjax.train import steps
  from attnjax.train.state import init_state
  from attnjax.tokens import random_batch
  from experiments.parallelism.run import while_loops
  length = 23
  config = base()
  config.model = ml_collections.ConfigDict({**min_rnn_model().to_dict(), 'embed_dim': 8,
                                            'hidden_dim': 8, 'num_layers': 1, 'scan': scan})
  model = build(config.model, 17, 17)
  batch = random_batch(2, length, length, 17)
  step = jax.jit(steps.bind(model, config.train)[0])
  hlo = step.lower(init_state(model, config.train, 0), batch, jax.random.key(0)).compile().as_text()
  trips = [loop['trip_count'] for loop in while_loops(hlo)]
  assert (length in trips) == (scan == 'sequential'), trips


def copy_batch(rng, size):
  """Sources of 2-5 words from ids 4..12 and their copies: (src, tgt_in, tgt_out) [size, 6]."""
  src = np.full((size, 6), PAD_ID, np.int32)
  tgt_in, tgt_out = src.copy(), src.copy()
  for row in range(size):
    words = rng.integers(4, 13, rng.integers(2, 6))
    src[row, :len(words) + 1] = [*words, EOS_ID]
    tgt_out[row, :len(words) + 1] = [*words, EOS_ID]
    tgt_in[row, :len(words) + 1] = [BOS_ID, *words]
  return src, tgt_in, tgt_out


@pytest.mark.slow
def test_a_trained_copier_decodes_greedy_and_beam():
  from attnjax.infer import decode
  model = build(ml_collections.ConfigDict({**min_rnn_model().to_dict(), 'embed_dim': 32,
                                           'hidden_dim': 64, 'num_layers': 2, 'dropout': 0.0}),
                13, 13)
  params = init_params(model, 0)
  optimizer = optax.adam(1e-2)

  @jax.jit
  def update(params, opt_state, src, tgt_in, tgt_out):
    def loss(params):
      logits = model.apply({'params': params}, src, tgt_in)
      nll = optax.softmax_cross_entropy_with_integer_labels(logits, tgt_out)
      return jnp.sum(nll * (tgt_out != PAD_ID)) / jnp.sum(tgt_out != PAD_ID)
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, value

  rng = np.random.default_rng(0)
  opt_state = optimizer.init(params)
  for _ in range(500):
    params, opt_state, loss = update(params, opt_state, *copy_batch(rng, 32))
  src, _, tgt_out = copy_batch(np.random.default_rng(1), 16)
  for beam in (1, 3):
    out = decode.decode(model, {'params': params}, jnp.asarray(src), max_len=8, beam_size=beam)
    tokens = np.asarray(out.tokens)[:, :6]
    assert np.mean(np.all(tokens == tgt_out, axis=1)) >= 0.9, (beam, tokens, tgt_out)
    align = np.asarray(out.alignment)[:, :, 0, 0]  # [B, T, S]: copying attends to the word it copies
    real = tgt_out != PAD_ID
    assert np.mean(align.argmax(-1)[:, :6][real] == np.broadcast_to(np.arange(6), src.shape)[real]) > 0.8


@pytest.mark.slow
def test_trains_saves_loads_and_translates(data_dir, tmp_path):
  import attnjax
  from attnjax.data import pipeline
  from attnjax.train.loop import train_and_evaluate
  from tests.helpers import tiny_config
  config = tiny_config(data_dir, steps=3)
  config.model = min_rnn_model('lstm', 'luong')
  config.model.update(embed_dim=16, hidden_dim=16, num_layers=1)
  train_and_evaluate(config, tmp_path / 'run', progress=False)
  trained = attnjax.load(tmp_path / 'run')
  assert trained.config.model.family == 'minrnn'
  sources = [s for s, _ in pipeline.load_pairs(trained.config.data, 'test')[:4]]
  texts = trained.translate(sources)
  assert len(texts) == 4 and all(isinstance(t, str) for t in texts)
  for t in trained.alignments(sources):
    assert t.alignment.shape == (len(t.tgt_pieces), 1, 1, len(t.src_pieces))
    np.testing.assert_allclose(t.alignment.sum(-1), 1.0, rtol=1e-5)


def test_config_presets_and_bad_options():
  from experiments.common import load_config
  config = load_config('configs/rnn_min.py:cell=lstm,attention=none')
  assert (config.model.family, config.model.cell, config.model.attention) == ('minrnn', 'lstm', 'none')
  assert type(build(config.model, 17, 17)).__name__ == 'MinRNNSeq2Seq'
  with pytest.raises(ConfigError, match=r"attention='bahdanau' is not one of luong, none"):
    load_config('configs/rnn_min.py:attention=bahdanau')
  for field, value in (('scan', 'parallel'), ('cell', 'rnn'), ('attention', 'local'),
                       ('score', 'cosine'), ('hidden_dim', 0)):
    with pytest.raises(ValueError, match=rf'model\.{field}='):
      build(ml_collections.ConfigDict({**config.model.to_dict(), 'attention': 'luong',
                                       field: value}), 17, 17)


@pytest.mark.parametrize('cell,attention', [('gru', 'luong'), ('lstm', 'none')])
def test_flops_agree_with_xla(cell, attention):
  """With the associative walk the forward pass has no loop, so XLA's count (which counts a
  loop's body once) is whole: at a size where matrix products dominate, the analytic count of
  them is within 10 % of it."""
  from attnjax.speed import bench
  from attnjax.models import flops
  cfg = ml_collections.ConfigDict({**min_rnn_model(cell, attention).to_dict(), 'embed_dim': 256,
                                   'hidden_dim': 512, 'scan': 'associative', 'dropout': 0.0})
  model = build(cfg, 512, 512)
  src = tgt = jax.ShapeDtypeStruct((4, 16), jnp.int32)
  variables = jax.eval_shape(model.init, jax.random.key(0), src, tgt)
  forward = jax.jit(lambda v, s, t: model.apply(v, s, t)).lower(variables, src, tgt).compile()
  assert bench.xla_flops(forward) == pytest.approx(flops.forward(cfg, 512, 4, 16, 16), rel=0.1)
