"""Greedy and beam search against the model contract, for every family."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from attnjax import config as config_lib
from attnjax import decode, models
from attnjax.models import BOS_ID, EOS_ID, PAD_ID

VOCAB = 13


def tiny(family, decoder="luong"):
  if family == "rnn":
    cfg = config_lib.rnn_model(decoder=decoder)
    cfg.update(embed_dim=8, hidden_dim=8, dropout=0.0)
  else:
    cfg = ml_collections.ConfigDict(dict(
        family="transformer", dtype="float32", d_model=8, num_heads=2, d_ff=16,
        num_encoder_layers=1, num_decoder_layers=2, dropout=0.0, attention_dropout=0.0,
        positions="sinusoidal", norm="pre", share_embeddings=True, max_len=32))
  model = models.build(cfg, VOCAB, VOCAB)
  src = jnp.array([[5, 6, 7, 8, EOS_ID, PAD_ID], [9, 4, EOS_ID, PAD_ID, PAD_ID, PAD_ID]], jnp.int32)
  params = model.init(jax.random.PRNGKey(1), src, src)
  return model, params, src


FAMILIES = [("rnn", "seq2seq"), ("rnn", "bahdanau"), ("rnn", "luong"), ("transformer", None)]


@pytest.mark.parametrize("family,decoder", FAMILIES)
def test_greedy_is_the_argmax_of_teacher_forcing(family, decoder):
  model, params, src = tiny(family, decoder)
  out = decode.greedy(model, params, src, max_len=7)
  tokens = np.asarray(out.tokens)
  tgt_in = np.concatenate([np.full((2, 1), BOS_ID), tokens[:, :-1]], axis=1)
  logits = model.apply(params, src, jnp.asarray(tgt_in, jnp.int32))
  argmax = np.asarray(jnp.argmax(logits.at[..., jnp.array([PAD_ID, BOS_ID])].set(-1e9), -1))
  for row, length in enumerate(np.asarray(out.lengths)):
    assert length >= 1
    np.testing.assert_array_equal(argmax[row, :length], tokens[row, :length])
    assert np.all(tokens[row, length:] == PAD_ID)


@pytest.mark.parametrize("family,decoder", FAMILIES)
def test_beam_of_one_is_greedy(family, decoder):
  model, params, src = tiny(family, decoder)
  greedy = decode.greedy(model, params, src, max_len=7)
  beam = decode.beam_search(model, params, src, max_len=7, beam_size=1, alpha=0.6)
  np.testing.assert_array_equal(np.asarray(beam.tokens), np.asarray(greedy.tokens))
  if greedy.alignment is not None:
    np.testing.assert_allclose(np.asarray(beam.alignment), np.asarray(greedy.alignment), atol=1e-6)


@pytest.mark.parametrize("family,decoder", [("rnn", "luong"), ("transformer", None)])
def test_beam_hypotheses_are_well_formed_and_scored(family, decoder):
  model, params, src = tiny(family, decoder)
  out = decode.beam_search(model, params, src, max_len=7, beam_size=4, alpha=0.0)
  tokens = np.asarray(out.tokens)
  # Re-scoring the chosen hypothesis with teacher forcing gives the score beam search reports.
  tgt_in = np.concatenate([np.full((2, 1), BOS_ID), tokens[:, :-1]], axis=1)
  logits = model.apply(params, src, jnp.asarray(tgt_in, jnp.int32))
  log_probs = jax.nn.log_softmax(logits.at[..., jnp.array([PAD_ID, BOS_ID])].set(-1e9))
  for row, length in enumerate(np.asarray(out.lengths)):
    picked = np.take_along_axis(np.asarray(log_probs[row, :length]), tokens[row, :length, None], -1)
    np.testing.assert_allclose(picked.sum(), float(out.scores[row]), rtol=1e-4, atol=1e-4)
    assert np.all(tokens[row, length:] == PAD_ID)
    assert EOS_ID not in tokens[row, :length - 1]


@pytest.mark.parametrize("family,decoder", [("rnn", "bahdanau"), ("transformer", None)])
def test_alignment_rows_are_distributions_over_real_source_tokens(family, decoder):
  model, params, src = tiny(family, decoder)
  out = decode.decode(model, params, src, max_len=5, beam_size=3)
  align = np.asarray(out.alignment)                   # [B, T, layers, heads, S]
  src_len = np.asarray((src != PAD_ID).sum(-1))
  for row, length in enumerate(np.asarray(out.lengths)):
    np.testing.assert_allclose(align[row, :length].sum(-1), 1.0, atol=1e-5)
    assert np.all(align[row, :, :, :, src_len[row]:] == 0.0)


def test_models_without_attention_have_no_alignment():
  model, params, src = tiny("rnn", "seq2seq")
  assert decode.greedy(model, params, src, max_len=4).alignment is None


def test_beam_size_zero_is_refused():
  model, params, src = tiny("rnn", "luong")
  with pytest.raises(ValueError, match="beam size must be at least 1"):
    decode.decode(model, params, src, max_len=4, beam_size=0)


@pytest.mark.parametrize("family,decoder", FAMILIES)
def test_reordered_hypotheses_score_their_own_histories(family, decoder):
  """Step decoding of K hypotheses per sentence, reordered along random parents after each
  step as beam search does, gives every hypothesis the logits that teacher forcing gives
  its own token history."""
  model, params, src = tiny(family, decoder)
  batch, k, steps = src.shape[0], 3, 5
  rng = np.random.default_rng(0)
  state = model.apply(params, src, steps, method=model.init_decode_state)
  state = jax.tree.map(lambda x: jnp.repeat(x, k, axis=0), state)
  # Not jitted: leaves the step passes through stay the same objects, as in beam search's
  # trace, so reorder_state's skipping of them is exercised too.
  step = lambda tokens, state: model.apply(params, tokens, state, method=model.decode_step,
                                           mutable=["intermediates"])[0]
  history = np.full((batch, k, 1), BOS_ID, np.int32)
  histories, step_logits = [], []
  for _ in range(steps):
    logits, new_state = step(jnp.asarray(history[:, :, -1].reshape(-1)), state)
    padded = np.full((batch * k, steps), PAD_ID, np.int32)  # later tokens cannot matter
    padded[:, :history.shape[-1]] = history.reshape(batch * k, -1)
    histories.append(padded)
    step_logits.append(logits)
    parents = rng.integers(0, k, (batch, k))
    tokens = rng.integers(4, VOCAB, (batch, k, 1))
    history = np.concatenate([np.take_along_axis(history, parents[..., None], 1), tokens], -1)
    state = decode.reorder_state(new_state, state, jnp.asarray(parents, jnp.int32))
  # Teacher forcing on every step's histories at once; step t's logits are at position t.
  forced = model.apply(params, jnp.tile(jnp.repeat(src, k, axis=0), (steps, 1)),
                       jnp.asarray(np.concatenate(histories)))
  forced = np.asarray(forced).reshape(steps, batch * k, steps, -1)
  for t in range(steps):
    np.testing.assert_allclose(step_logits[t], forced[t, :, t], atol=1e-5, rtol=1e-5)
