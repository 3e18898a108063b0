"""RNN encoder-decoders: source padding never leaks into states, outputs or alignments."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from attnjax.config import rnn_model
from attnjax.models import build
from attnjax.tokens import PAD_ID
from attnjax.models.rnn import reverse_words
from tests.helpers import random_variables

BASE = {**rnn_model(decoder='luong', score='general').to_dict(), 'embed_dim': 8, 'hidden_dim': 10}
SRC = jnp.array([[5, 6, 7, 2, 0], [4, 5, 6, 7, 2], [9, 2, 0, 0, 0]], jnp.int32)
TGT_IN = jnp.array([[1, 5, 6, 7], [1, 4, 4, 5], [1, 8, 0, 0]], jnp.int32)
EXTRA_PAD = 3


@pytest.mark.parametrize('overrides', [
    dict(num_layers=2),
    dict(decoder='bahdanau', cell='gru'),
    dict(decoder='seq2seq', cell='gru', bidirectional=False),
    dict(decoder='encdec', reverse_source=True),
], ids=['luong-bilstm-2layers', 'bahdanau-bigru', 'seq2seq-gru', 'encdec-reversed-bilstm'])
@pytest.mark.slow
def test_extra_source_padding_changes_nothing(overrides):
  model = build(ml_collections.ConfigDict({**BASE, **overrides}), 13, 17)
  variables = random_variables(model, SRC, TGT_IN)
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
  if overrides.get('decoder') in ('seq2seq', 'encdec'):
    assert inter == {} and padded_inter == {}
    return
  cross = inter['cross_attention'][0]  # [B, T, 1, 1, S]
  padded_cross = padded_inter['cross_attention'][0]
  np.testing.assert_allclose(padded_cross[..., :S], cross, atol=1e-6)
  assert np.all(np.asarray(padded_cross)[..., S:] == 0.0)
  source_pad = np.asarray(SRC == PAD_ID)[:, None, None, None, :]
  np.testing.assert_array_equal(np.asarray(cross) * source_pad, 0.0)
  np.testing.assert_allclose(cross.sum(-1), 1.0, rtol=1e-5)


def test_reverse_words_keeps_eos_and_padding_in_place():
  src = jnp.array([[5, 6, 7, 2, 0], [4, 5, 6, 7, 2], [9, 2, 0, 0, 0], [2, 0, 0, 0, 0]])
  np.testing.assert_array_equal(
      reverse_words(src),
      [[7, 6, 5, 2, 0], [7, 6, 5, 4, 2], [9, 2, 0, 0, 0], [2, 0, 0, 0, 0]])
  np.testing.assert_array_equal(reverse_words(reverse_words(src)), src)


@pytest.mark.slow
@pytest.mark.parametrize('decoder', ['seq2seq', 'encdec'])
def test_reverse_source_is_the_model_reading_reversed_words(decoder):
  """A reversed model on x computes what the same parameters compute without reversal on
  x's reversed words: the reversal lives inside the model, so training, decoding and
  evaluation all see it."""
  cfg = {**BASE, 'decoder': decoder}
  reversed_model = build(ml_collections.ConfigDict({**cfg, 'reverse_source': True}), 13, 17)
  plain_model = build(ml_collections.ConfigDict(cfg), 13, 17)
  variables = random_variables(plain_model, SRC, TGT_IN)
  reversed_logits = reversed_model.apply(variables, SRC, TGT_IN)
  np.testing.assert_allclose(reversed_logits, plain_model.apply(variables, reverse_words(SRC), TGT_IN),
                             atol=1e-6)
  assert not np.allclose(reversed_logits, plain_model.apply(variables, SRC, TGT_IN), atol=1e-3)


def test_encdec_reads_the_summary_at_every_step():
  """RNNencdec's decoder depends on the source at every step, not only through s_0: with the
  initial state fixed, changing the summary c still changes every step's logits."""
  model = build(ml_collections.ConfigDict({**BASE, 'decoder': 'encdec'}), 13, 17)
  variables = random_variables(model, SRC, TGT_IN)
  encoded = model.apply(variables, SRC, method=model.encode)
  bridged = model.apply(variables, encoded['final'], method=lambda m, f: m.bridge(f))
  y_emb = model.apply(variables, TGT_IN, method=lambda m, t: m.tgt_embed(t))

  def logits(summary):
    return model.apply(variables, bridged, y_emb, {'summary': summary},
                       method=lambda m, c, y, mem: m.decoder_net(c, y, mem, False))[0]

  summary = jax.tree.leaves(bridged[-1])[-1]  # h of the top layer
  changed = logits(summary + 1.0) - logits(summary)  # [B, T, V]
  assert np.all(np.abs(np.asarray(changed)).max(-1) > 1e-4)
