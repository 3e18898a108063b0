"""RNN encoder-decoders: source padding never leaks into states, outputs or alignments."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from attnjax.models import PAD_ID, build

BASE = dict(family='rnn', dtype='float32', cell='lstm', embed_dim=8, hidden_dim=10,
            num_layers=1, bidirectional=True, dropout=0.1, decoder='luong', score='general',
            input_feeding=True)
SRC = jnp.array([[5, 6, 7, 2, 0], [4, 5, 6, 7, 2], [9, 2, 0, 0, 0]], jnp.int32)
TGT_IN = jnp.array([[1, 5, 6, 7], [1, 4, 4, 5], [1, 8, 0, 0]], jnp.int32)
EXTRA_PAD = 3


def random_variables(model, seed=0):
  shapes = jax.eval_shape(model.init, jax.random.key(0), SRC, TGT_IN)
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda leaf: jnp.asarray(rng.normal(scale=0.3, size=leaf.shape)), shapes)


@pytest.mark.parametrize('overrides', [
    dict(num_layers=2),
    dict(decoder='bahdanau', cell='gru'),
    dict(decoder='seq2seq', cell='gru', bidirectional=False),
], ids=['luong-bilstm-2layers', 'bahdanau-bigru', 'seq2seq-gru'])
def test_extra_source_padding_changes_nothing(overrides):
  model = build(ml_collections.ConfigDict({**BASE, **overrides}), 13, 17)
  variables = random_variables(model)
  padded_src = jnp.pad(SRC, ((0, 0), (0, EXTRA_PAD)), constant_values=PAD_ID)

  @jax.jit
  def run(src):
    logits, inter = model.apply(variables, src, TGT_IN, mutable=['intermediates'])
    encoded = model.apply(variables, src, method=model.encode)
    return logits, inter.get('intermediates', {}), encoded

  logits, inter, encoded = run(SRC)
  padded_logits, padded_inter, padded_encoded = run(padded_src)
  S = SRC.shape[1]
  np.testing.assert_allclose(padded_logits, logits, atol=1e-5)
  np.testing.assert_allclose(padded_encoded['states'][:, :S], encoded['states'], atol=1e-5)
  np.testing.assert_array_equal(padded_encoded['states'][:, S:], 0.0)
  np.testing.assert_array_equal(np.asarray(encoded['states'])[np.asarray(SRC == PAD_ID)], 0.0)
  for final, padded_final in zip(jax.tree.leaves(encoded['final']),
                                 jax.tree.leaves(padded_encoded['final'])):
    np.testing.assert_allclose(padded_final, final, atol=1e-5)
  if overrides.get('decoder') == 'seq2seq':
    assert inter == {} and padded_inter == {}
    return
  cross = inter['cross_attention'][0]  # [B, T, 1, 1, S]
  padded_cross = padded_inter['cross_attention'][0]
  np.testing.assert_allclose(padded_cross[..., :S], cross, atol=1e-6)
  assert np.all(np.asarray(padded_cross)[..., S:] == 0.0)
  source_pad = np.asarray(SRC == PAD_ID)[:, None, None, None, :]
  np.testing.assert_array_equal(np.asarray(cross) * source_pad, 0.0)
  np.testing.assert_allclose(cross.sum(-1), 1.0, rtol=1e-5)
