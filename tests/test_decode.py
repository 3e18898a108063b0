"""Greedy and beam search against the model contract, for every family."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnjax import config as config_lib
from attnjax import models
from attnjax.infer import decode, sampling
from attnjax.tokens import BOS_ID, EOS_ID, PAD_ID

VOCAB = 13


def tiny(family, decoder="luong"):
  if family == "rnn":
    cfg = config_lib.rnn_model(decoder=decoder)
    cfg.update(embed_dim=8, hidden_dim=8, dropout=0.0)
  elif family == "minrnn":
    cfg = config_lib.min_rnn_model(attention=decoder)
    cfg.update(embed_dim=8, hidden_dim=8, num_layers=1, dropout=0.0)
  else:
    cfg = config_lib.transformer_model("tiny")
    cfg.update(d_model=8, d_ff=16, num_decoder_layers=2, dropout=0.0, max_len=32)
  model = models.build(cfg, VOCAB, VOCAB)
  src = jnp.array([[5, 6, 7, 8, EOS_ID, PAD_ID], [9, 4, EOS_ID, PAD_ID, PAD_ID, PAD_ID]], jnp.int32)
  params = model.init(jax.random.PRNGKey(1), src, src)
  return model, params, src


FAMILIES = [pytest.param("rnn", "seq2seq", marks=pytest.mark.slow), ("rnn", "bahdanau"), ("rnn", "luong"),
            ("minrnn", "luong"), pytest.param("minrnn", "none", marks=pytest.mark.slow),
            ("transformer", None)]


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


@pytest.mark.parametrize("family,decoder", [("rnn", "bahdanau"), ("minrnn", "luong"), ("transformer", None)])
def test_alignment_rows_are_distributions_over_real_source_tokens(family, decoder):
  model, params, src = tiny(family, decoder)
  out = decode.decode(model, params, src, max_len=5, beam_size=3)
  align = np.asarray(out.alignment)                   # [B, T, layers, heads, S]
  src_len = np.asarray((src != PAD_ID).sum(-1))
  for row, length in enumerate(np.asarray(out.lengths)):
    np.testing.assert_allclose(align[row, :length].sum(-1), 1.0, atol=1e-5)
    assert np.all(align[row, :, :, :, src_len[row]:] == 0.0)


@pytest.mark.parametrize("family,decoder", [("rnn", "seq2seq"), ("minrnn", "none")])
def test_models_without_attention_have_no_alignment(family, decoder):
  model, params, src = tiny(family, decoder)
  assert decode.greedy(model, params, src, max_len=4).alignment is None


def test_beam_size_zero_is_refused():
  model, params, src = tiny("rnn", "luong")
  with pytest.raises(ValueError, match="beam size must be at least 1"):
    decode.decode(model, params, src, max_len=4, beam_size=0)


@pytest.mark.slow
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


def test_phases_split_max_len_into_up_to_four_parts():
  assert decode.phase_ends(7) == [7]
  assert decode.phase_ends(20) == [10, 20]
  assert decode.phase_ends(32) == [8, 16, 24, 32]
  assert decode.phase_ends(101) == [26, 51, 76, 101]


@pytest.mark.slow
@pytest.mark.parametrize("family,decoder", [("rnn", "luong"), ("transformer", None)])
@pytest.mark.parametrize("beam_size", [1, 3])
def test_decoding_in_phases_matches_one_phase(family, decoder, beam_size, monkeypatch):
  """A growing cache (3 phases at 24 tokens) decodes what a full-length one does; the RNN
  states do not grow, and a search that ends in the first phase skips the others."""
  model, params, src = tiny(family, decoder)
  phased = decode.decode(model, params, src, max_len=24, beam_size=beam_size)
  if family == "transformer":
    assert int(np.max(phased.lengths)) > decode.phase_ends(24)[0]  # the later phases ran
  monkeypatch.setattr(decode, "MAX_PHASES", 1)
  whole = decode.decode(model, params, src, max_len=24, beam_size=beam_size)
  np.testing.assert_array_equal(np.asarray(phased.tokens), np.asarray(whole.tokens))
  np.testing.assert_allclose(np.asarray(phased.scores), np.asarray(whole.scores), rtol=1e-5)
  if whole.alignment is not None:
    np.testing.assert_allclose(np.asarray(phased.alignment), np.asarray(whole.alignment), atol=1e-6)


@pytest.mark.parametrize("family,decoder,loops", [("rnn", "luong", 1), ("minrnn", "luong", 1),
                                                  ("transformer", None, 3)])
def test_only_a_growing_state_is_decoded_in_phases(family, decoder, loops):
  """An RNN's state does not depend on max_len, so it gets one loop, not three copies."""
  model, params, src = tiny(family, decoder)
  jaxpr = jax.make_jaxpr(lambda p, s: decode.greedy(model, p, s, max_len=24))(params, src)
  assert sum(eqn.primitive.name == "while" for eqn in jaxpr.jaxpr.eqns) == loops


def test_decoding_past_learned_positions_is_refused():
  cfg = config_lib.transformer_model("tiny")
  cfg.update(d_model=8, d_ff=16, dropout=0.0, positions="learned", max_len=16)
  model = models.build(cfg, VOCAB, VOCAB)
  src = jnp.array([[5, 6, EOS_ID]], jnp.int32)
  params = model.init(jax.random.PRNGKey(0), src, src)
  with pytest.raises(ValueError, match="exceeds model.max_len"):
    decode.decode(model, params, src, max_len=32)  # the first phase alone would fit


@pytest.mark.slow
@pytest.mark.parametrize("family,decoder", [("rnn", "bahdanau"), ("transformer", None)])
def test_beam_alignment_is_the_cross_attention_of_the_chosen_tokens(family, decoder):
  """The alignment traced back through the beam's parents is what teacher forcing the
  returned tokens attends to; zero after EOS."""
  model, params, src = tiny(family, decoder)
  out = decode.beam_search(model, params, src, max_len=20, beam_size=3)
  tokens = np.asarray(out.tokens)
  tgt_in = np.concatenate([np.full((2, 1), BOS_ID), tokens[:, :-1]], axis=1)
  _, inter = model.apply(params, src, jnp.asarray(tgt_in, jnp.int32), mutable=["intermediates"])
  forced = np.asarray(inter["intermediates"]["cross_attention"][0])  # [B, T, L, H, S]
  align = np.asarray(out.alignment)
  for row, length in enumerate(np.asarray(out.lengths)):
    np.testing.assert_allclose(align[row, :length], forced[row, :length], atol=1e-5)
    assert np.all(align[row, length:] == 0.0)


@pytest.mark.parametrize("vocab", [13, 240, 1000])
def test_top_continuations_equal_top_k_over_every_candidate(vocab):
  """Chunked selection gives lax.top_k's values and indices to the bit, ties (coarse logits)
  and finished hypotheses included; 13 has no chunk size, so it is one chunk per row."""
  batch, k = 5, 4
  rng = np.random.default_rng(vocab)
  logits = jnp.asarray(np.round(rng.normal(size=(batch * k, vocab)) * 2) / 2, jnp.float32)
  score = jnp.asarray(np.round(rng.normal(size=(batch, k)) * 2) / 2 - 3, jnp.float32)
  done = jnp.asarray(rng.random((batch, k)) < 0.3).at[0].set(True)

  def every_candidate(logits, score, done):
    frozen = jnp.full((vocab,), decode.NEG_INF).at[PAD_ID].set(0.0)
    log_probs = jax.nn.log_softmax(logits).reshape(batch, k, vocab)
    candidates = score[..., None] + jnp.where(done[..., None], frozen, log_probs)
    return jax.lax.top_k(candidates.reshape(batch, k * vocab), k)

  want = jax.jit(every_candidate)(logits, score, done)
  got = jax.jit(decode.top_continuations, static_argnums=3)(logits, score, done, k)
  np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
  np.testing.assert_array_equal(np.asarray(got[1]), np.asarray(want[1]))


@pytest.mark.slow
@pytest.mark.parametrize("family,decoder", [("rnn", "encdec"), ("transformer", None)])
def test_top_1_sampling_is_greedy_and_a_seed_repeats_its_draws(family, decoder):
  model, params, src = tiny(family, decoder)
  greedy = decode.greedy(model, params, src, max_len=7)
  top1 = decode.decode(model, params, src, 7, sampling=sampling.Sampling(top_k=1, seed=3))
  np.testing.assert_array_equal(np.asarray(top1.tokens), np.asarray(greedy.tokens))
  np.testing.assert_allclose(np.asarray(top1.scores), np.asarray(greedy.scores), rtol=1e-6)
  hot = lambda seed: np.asarray(decode.decode(
      model, params, src, 7, sampling=sampling.Sampling(temperature=5.0, seed=seed)).tokens)
  np.testing.assert_array_equal(hot(0), hot(0))
  assert any(not np.array_equal(hot(0), hot(seed)) for seed in (1, 2, 3))


def test_the_nucleus_holds_the_fewest_most_probable_tokens_reaching_its_mass():
  probs = jnp.array([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5], [0.25, 0.25, 0.25, 0.25]])
  allowed = np.isfinite(np.asarray(sampling.restrict(jnp.log(probs), top_p=0.75)))
  np.testing.assert_array_equal(allowed, [[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]])  # ties admitted
  allowed = np.isfinite(np.asarray(sampling.restrict(jnp.log(probs), top_p=0.4)))
  np.testing.assert_array_equal(allowed[:2], [[1, 0, 0, 0], [0, 0, 0, 1]])
  allowed = np.isfinite(np.asarray(sampling.restrict(jnp.log(probs), top_k=2)))
  np.testing.assert_array_equal(allowed[:2], [[1, 1, 0, 0], [0, 0, 1, 1]])


@pytest.mark.parametrize("vocab", [50, 8000])
def test_restrict_admits_what_a_sort_would(vocab):
  """Without sorting: top-k admits the values at or above lax.top_k's k-th (coarse logits
  make ties), the nucleus what a float64 sort's running mass admits (rows whose boundary
  lies within rounding of top_p left out)."""
  logits = jnp.round(jax.random.normal(jax.random.key(vocab), (16, vocab)) * 4.0) / 2.0
  log_probs = jax.nn.log_softmax(logits)
  for k in (1, 5, 20):
    kth = jax.lax.top_k(log_probs, k)[0][:, -1:]
    np.testing.assert_array_equal(np.isfinite(sampling.restrict(log_probs, top_k=k)),
                                  np.asarray(log_probs >= kth))
  probs = np.exp(np.asarray(log_probs, np.float64))
  for top_p in (0.3, 0.9):
    allowed = np.isfinite(np.asarray(sampling.restrict(log_probs, top_p=top_p)))
    checked = 0
    for row, p in enumerate(probs):
      ascending = np.sort(p)
      suffix = np.append(np.cumsum(ascending[::-1])[::-1], 0.0)
      above = suffix[np.searchsorted(ascending, p, side="right")]  # mass more probable than each
      if np.min(np.abs(above - top_p)) > 1e-5:
        np.testing.assert_array_equal(allowed[row], above < top_p)
        checked += 1
    assert checked >= len(probs) // 2


@pytest.mark.slow
@pytest.mark.parametrize("spec", [dict(top_k=3), dict(top_p=0.75), dict(top_k=3, top_p=0.9)])
def test_draws_follow_the_restricted_distribution(spec):
  """4,000 rows of one distribution over 2,000 tokens, one draw each: the frequencies are
  the renormalised probabilities of the admitted tokens (within 5 standard errors)."""
  probs = np.full(2000, 0.1 / 1995)
  probs[[17, 900, 1500, 1999, 3]] = [0.4, 0.25, 0.15, 0.06, 0.04]
  log_probs = jnp.tile(jnp.log(jnp.asarray(probs, jnp.float32)), (4000, 1))
  tokens = np.asarray(sampling.sample_choice(sampling.Sampling(seed=7, **spec))(log_probs, 0))
  admitted = np.isfinite(np.asarray(sampling.restrict(log_probs[:1], spec.get("top_k", 0),
                                                      spec.get("top_p", 1.0))))[0]
  assert admitted[tokens].all()
  expected = np.where(admitted, probs, 0) / probs[admitted].sum()
  seen = np.bincount(tokens, minlength=2000) / len(tokens)
  error = np.sqrt(expected * (1 - expected) / len(tokens))
  assert np.all(np.abs(seen - expected) <= 5 * error + 1e-9)


@pytest.mark.slow
def test_a_nucleus_never_draws_outside_its_mass():
  log_probs = jax.nn.log_softmax(jax.random.normal(jax.random.key(0), (64, 50)) * 2.0)
  choose = sampling.sample_choice(sampling.Sampling(top_p=0.6, seed=1))
  ordered = np.sort(np.exp(np.asarray(log_probs)), axis=-1)[:, ::-1]
  for t in range(20):
    tokens = np.asarray(choose(log_probs, t))
    p = np.exp(np.asarray(log_probs))[np.arange(64), tokens]
    above = np.array([ordered[r][ordered[r] > p[r]].sum() for r in range(64)])
    assert np.all(above < 0.6)  # the mass of the tokens more probable than the draw


@pytest.mark.slow
@pytest.mark.parametrize("family,decoder", [("rnn", "bahdanau"), ("transformer", None)])
def test_nbest_lists_the_beam_best_first_with_true_log_probabilities(family, decoder):
  model, params, src = tiny(family, decoder)
  out = decode.decode(model, params, src, 7, beam_size=4, alpha=0.6, nbest=4)
  listed = jax.device_get(out.nbest)
  np.testing.assert_array_equal(listed.tokens[:, 0], np.asarray(out.tokens))
  np.testing.assert_allclose(listed.scores[:, 0], np.asarray(out.scores))
  assert np.all(np.diff(listed.scores, axis=-1) <= 0)  # best first
  np.testing.assert_allclose(
      listed.scores, listed.log_probs / decode.length_penalty(listed.lengths.astype(np.float32), 0.6),
      rtol=1e-5)
  for row in range(src.shape[0]):
    hyps = {tuple(listed.tokens[row, n, :listed.lengths[row, n]]) for n in range(4)}
    assert len(hyps) == 4  # distinct hypotheses
    for n in range(4):
      tokens = listed.tokens[row, n]
      tgt_in = np.concatenate([[BOS_ID], tokens[:-1]])[None]
      logits = model.apply(params, src[row:row + 1], jnp.asarray(tgt_in, jnp.int32))
      log_probs = jax.nn.log_softmax(logits.at[..., jnp.array([PAD_ID, BOS_ID])].set(-1e9))[0]
      length = listed.lengths[row, n]
      picked = np.take_along_axis(np.asarray(log_probs[:length]), tokens[:length, None], -1).sum()
      np.testing.assert_allclose(picked, listed.log_probs[row, n], rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match="n-best list of 5 needs a beam of at least 5"):
    decode.decode(model, params, src, 7, beam_size=4, nbest=5)
