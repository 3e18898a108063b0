"""Greedy and beam search, written once against the model contract.

Every family offers `init_decode_state(src, max_len)` and `decode_step(tokens, state) ->
(logits, state)`; the Transformer's key/value cache and the RNN's carry are just leaves of
that state, each with the batch as its leading axis. `decode_step` sows the cross-attention
weights ([B, layers, heads, S]) into `intermediates`; we keep those along the chosen
hypotheses, which is what `attnjax align` draws. Models without attention sow nothing and
get `alignment=None`.

Sampling is greedy decoding with the argmax replaced by a draw from the model's
distribution, tempered and restricted to its top k tokens or to its nucleus, seeded
(`attnjax/infer/sampling.py`).

Beam search keeps K hypotheses per sentence, ranked by their summed log-probability; a
hypothesis that emits EOS stays in the beam, frozen, and competes with the others. At the
end the best of the K by the GNMT length penalty ((5 + |Y|) / 6) ** alpha (Wu et al. 2016,
eq. 14) wins. With K = 1 this is greedy decoding exactly.

Both searches run in up to four phases over a growing state. A state leaf whose shape
depends on `max_len` (the Transformer's key/value cache) is allocated for the first phase's
length and padded with zeros along that axis between phases, so attending to the cache and
reordering it cost what the tokens so far need rather than what `max_len` allows. The
contract this relies on: such a leaf is zero where nothing has been written yet, and
`decode_step` reads only the positions it has written. A state that does not grow (the
RNNs') decodes in one phase. The results do not depend on the phases beyond float32
rounding (tests/test_decode.py).
"""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from attnjax.errors import UsageError
from attnjax.tokens import BOS_ID, EOS_ID, PAD_ID
from attnjax.infer.sampling import Sampling, argmax, chunk_size, sample_choice

NEG_INF = -1e9
MAX_PHASES = 4
MIN_PHASE = 8  # tokens; shorter phases would cost more in loop overhead than they save


class Decoded(NamedTuple):
  tokens: jax.Array            # [B, max_len], EOS included, PAD after it
  lengths: jax.Array           # [B], tokens up to and including EOS
  scores: jax.Array            # [B], summed log-probability (length-penalised for beams)
  alignment: jax.Array | None  # [B, max_len, layers, heads, S] or None
  nbest: "NBest | None" = None  # beam search's n best, when asked for


class NBest(NamedTuple):
  """The n best hypotheses of a beam, best first."""
  tokens: jax.Array            # [B, n, max_len]
  lengths: jax.Array           # [B, n]
  scores: jax.Array            # [B, n], length-penalised: what ranks them
  log_probs: jax.Array         # [B, n], summed log-probability


def _step_fn(model, variables):
  """One decoder step; PAD and BOS are never emitted, so they get no probability."""
  def step(tokens, state):
    (logits, state), inter = model.apply(variables, tokens, state, method="decode_step",
                                         mutable=["intermediates"])
    logits = logits.astype(jnp.float32).at[:, jnp.array([PAD_ID, BOS_ID])].set(NEG_INF)
    weights = inter.get("intermediates", {}).get("cross_attention")
    return logits, state, (None if weights is None else weights[0])
  return step


def phase_ends(max_len: int) -> list[int]:
  """Where each phase of decoding stops: `max_len` split into up to MAX_PHASES equal parts
  of at least MIN_PHASE tokens."""
  phases = max(1, min(MAX_PHASES, max_len // MIN_PHASE))
  return [math.ceil(max_len * (i + 1) / phases) for i in range(phases)]


def _grower(model, variables, src, max_len: int, repeat: int = 1):
  """The first phase's state, the phases' ends, and `grow(state, length)`, which pads every
  leaf whose shape depends on the decoding length with zeros along that axis up to `length`.
  A model whose state does not grow (the RNNs) decodes in one phase."""
  init = lambda length: model.apply(variables, src, length, method="init_decode_state")
  full = jax.eval_shape(lambda: init(max_len))  # raises here if the model cannot decode max_len
  ends = phase_ends(max_len)
  # The time axis of a leaf is where its shapes at the first and the full length differ.
  axes = jax.tree.map(
      lambda a, b: next((i for i, (m, n) in enumerate(zip(a.shape, b.shape)) if m != n), None),
      jax.eval_shape(lambda: init(ends[0])), full)
  if all(axis is None for axis in jax.tree.leaves(axes, is_leaf=lambda x: x is None)):
    ends = [max_len]
  state = init(ends[0])
  if repeat > 1:
    state = jax.tree.map(lambda x: jnp.repeat(x, repeat, axis=0), state)  # [B*K, ...]

  def grow(state, length):
    def pad(x, axis):
      if axis is None or x.shape[axis] == length:
        return x
      widths = [(0, 0)] * x.ndim
      widths[axis] = (0, length - x.shape[axis])
      return jnp.pad(x, widths)
    return jax.tree.map(pad, state, axes)

  return state, ends, grow


class _Carry(NamedTuple):
  """What a decoding loop carries from one step to the next."""
  t: Any        # steps taken
  prev: Any     # the tokens chosen last, [B] (beam: [B, K])
  state: Any    # the model's decoding state
  out: Any      # the tokens so far, [B, max_len] (beam: [B, K, max_len])
  done: Any     # rows that have emitted EOS
  score: Any    # summed log-probabilities of the tokens chosen
  extra: Any    # greedy: the cross-attention so far; beam: (parents, cross-attention) per step


def _run_phases(body, carry: _Carry, ends, grow) -> _Carry:
  """Runs `body` while t < max_len and not every row is done, phase by phase, the decoding
  state grown to each phase's length first."""
  for end in ends:
    carry = carry._replace(state=grow(carry.state, end))
    carry = jax.lax.while_loop(lambda c, end=end: (c.t < end) & ~jnp.all(c.done), body, carry)
  return carry


def greedy(model, variables, src, max_len: int, choose=None) -> Decoded:
  """Argmax decoding of up to `max_len` tokens for a batch of sources [B, S], or sampling
  with `choose(log_probs, t) -> tokens` (`sample_choice`); scores are the model's summed
  log-probabilities of the tokens chosen."""
  choose = choose or (lambda log_probs, t: argmax(log_probs))
  batch = src.shape[0]
  step = _step_fn(model, variables)
  state, ends, grow = _grower(model, variables, src, max_len)
  first = jnp.full((batch,), BOS_ID, jnp.int32)
  _, _, weights = jax.eval_shape(step, first, state)
  align = None if weights is None else jnp.zeros((batch, max_len) + weights.shape[1:], weights.dtype)

  def body(carry):
    t, prev, state, out, done, score, align = carry
    logits, state, weights = step(prev, state)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
    token = choose(log_probs, t)
    token = jnp.where(done, PAD_ID, token)
    score = score + jnp.where(done, 0.0, jnp.take_along_axis(log_probs, token[:, None], -1)[:, 0])
    out = out.at[:, t].set(token)
    if align is not None:
      align = align.at[:, t].set(jnp.where(done[:, None, None, None], 0.0, weights))
    return _Carry(t + 1, token, state, out, done | (token == EOS_ID), score, align)

  out = jnp.zeros((batch, max_len), jnp.int32)
  carry = _Carry(0, first, state, out, jnp.zeros((batch,), bool), jnp.zeros((batch,)), align)
  carry = _run_phases(body, carry, ends, grow)
  return Decoded(carry.out, _lengths(carry.out), carry.score, carry.extra)


def _lengths(tokens):
  return jnp.sum(tokens != PAD_ID, axis=-1).astype(jnp.int32)


def length_penalty(length, alpha: float):
  """GNMT length penalty lp(Y) = ((5 + |Y|) / 6) ** alpha."""
  return ((5.0 + length) / 6.0) ** alpha


def _gather(x, index):
  """x [B, K, ...], index [B, J] -> [B, J, ...]: rows of x picked per sentence."""
  return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=1)


def reorder_state(new_state, old_state, parents):
  """The decoding state [B * K, ...] after a step, with hypothesis k of sentence b taking
  over the rows of hypothesis parents[b, k] ([B, K]).

  A leaf the step passed through unchanged (encoder memory, cross-attention keys and
  values, source mask) is the same in all K copies of a sentence, so it is not reordered:
  that saves a copy of it every step.
  """
  batch, k = parents.shape

  def pick(x, old):
    return x if x is old else _gather(x.reshape((batch, k) + x.shape[1:]), parents).reshape(x.shape)

  return jax.tree.map(pick, new_state, old_state)


def top_continuations(logits, score, done, k: int):
  """The k best of the B x (K * V) continuations score + log_softmax(logits), where a done
  hypothesis's only continuation is PAD at no cost; returns (scores [B, k], indices [B, k]
  into the K * V continuations of each sentence), equal to `jax.lax.top_k` over them.

  logits [B * K, V], score and done [B, K]. The B x K x V candidates are never written out:
  the vocabulary is cut into chunks, and the k best continuations lie in the k chunks with
  the highest maxima (a continuation outside them has k chunk maxima at or above it, each
  earlier on a tie). So one reduction gives the chunk maxima, a top_k picks among them, and a
  second top_k looks inside the k chunks picked. Every candidate is computed with the same
  floating-point operations as `score + log_softmax(logits)`, whose rounding preserves
  order, so the result is the same to the bit. On a CPU this is several times faster than
  XLA's TopK over the written-out candidates (`experiments/speed/README.md`).
  """
  batch, beams = score.shape
  vocab = logits.shape[-1]
  size = chunk_size(vocab)
  chunks = vocab // size
  # log_softmax's own steps: (x - max) - log(sum(exp(x - max))).
  x_max = jnp.max(logits, axis=-1, initial=-jnp.inf, keepdims=True)       # [B*K, 1]
  log_sum = jnp.log(jnp.sum(jnp.exp(logits - x_max), axis=-1, keepdims=True))
  frozen = jnp.full((chunks, size), NEG_INF).at[PAD_ID // size, PAD_ID % size].set(0.0)
  row_score, row_done = score.reshape(-1, 1), done.reshape(-1, 1)         # [B*K, 1]

  def candidates(x, frozen, rows):
    """score + (frozen if done else log_softmax) for values x of the given rows."""
    pick = lambda a: a if rows is None else a.reshape(-1)[rows][..., None]
    return pick(row_score) + jnp.where(pick(row_done), frozen,
                                       (x - pick(x_max)) - pick(log_sum))

  chunk_max = candidates(jnp.max(logits.reshape(-1, chunks, size), axis=-1),
                         jnp.max(frozen, axis=-1), None)                   # [B*K, chunks]
  _, best = jax.lax.top_k(chunk_max.reshape(batch, beams * chunks), k)     # [B, k]
  best = jnp.sort(best, axis=-1)  # in index order, so ties go to the earlier index
  beam, chunk = best // chunks, best % chunks
  rows = jnp.arange(batch)[:, None] * beams + beam                        # [B, k] into B*K
  values = candidates(logits.reshape(-1, chunks, size)[rows, chunk], frozen[chunk], rows)
  top, inner = jax.lax.top_k(values.reshape(batch, k * size), k)          # [B, k]
  picked = jnp.take_along_axis(best, inner // size, axis=-1)
  return top, (picked // chunks) * vocab + (picked % chunks) * size + inner % size


def beam_search(model, variables, src, max_len: int, beam_size: int, alpha: float = 0.6,
                nbest: int = 0) -> Decoded:
  """Beam search with `beam_size` hypotheses per source; see the module docstring. With
  `nbest` (at most `beam_size`) the final beam's `nbest` best are returned too.

  Each step records the hypotheses' parents and the cross-attention weights as computed;
  the best hypothesis's alignment is traced back through the parents at the end, instead of
  reordering [B, K, max_len, ...] weights every step.
  """
  batch, k = src.shape[0], beam_size
  step = _step_fn(model, variables)
  state, ends, grow = _grower(model, variables, src, max_len, repeat=k)
  first = jnp.full((batch * k,), BOS_ID, jnp.int32)
  logits_shape, _, weights = jax.eval_shape(step, first, state)
  vocab = logits_shape.shape[-1]
  if weights is None:
    history = None
  else:
    history = (jnp.zeros((max_len, batch, k), jnp.int32),                    # parents
               jnp.zeros((max_len, batch, k) + weights.shape[1:], weights.dtype))

  def body(carry):
    t, prev, state, out, done, score, history = carry
    logits, new_state, weights = step(prev.reshape(-1), state)
    score, flat = top_continuations(logits, score, done, k)             # [B, K]
    beam, token = flat // vocab, (flat % vocab).astype(jnp.int32)
    out = _gather(out, beam).at[:, :, t].set(token)
    was_done = _gather(done, beam)
    state = reorder_state(new_state, state, beam)
    if history is not None:
      parents, cross = history
      history = (parents.at[t].set(beam),
                 cross.at[t].set(weights.reshape((batch, k) + weights.shape[1:])))
    return _Carry(t + 1, token, state, out, was_done | (token == EOS_ID), score, history)

  out = jnp.zeros((batch, k, max_len), jnp.int32)
  # Only the first copy of each sentence is live at the start, so the K beams differ.
  score = jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1)), (batch, 1))
  carry = _Carry(0, first.reshape(batch, k), state, out, jnp.zeros((batch, k), bool), score, history)
  carry = _run_phases(body, carry, ends, grow)
  steps, out, score, history = carry.t, carry.out, carry.score, carry.extra
  normalised = score / length_penalty(_lengths(out).astype(jnp.float32), alpha)
  best = jnp.argmax(normalised, axis=-1)[:, None]                  # [B, 1]
  pick = lambda x: _gather(x, best)[:, 0]
  tokens, lengths = pick(out), pick(_lengths(out))
  align = None if history is None else _trace_back(best, steps, lengths, *history)
  listed = None
  if nbest:
    _, order = jax.lax.top_k(normalised, nbest)                    # [B, n], best first
    listed = NBest(_gather(out, order), _gather(_lengths(out), order), _gather(normalised, order),
                   _gather(score, order))
  return Decoded(tokens, lengths, pick(normalised), align, listed)


def _trace_back(best, steps, lengths, parents, cross):
  """The cross-attention weights [B, max_len, ...] along hypothesis `best` [B, 1]: at step
  t the weights its parent computed; zero from the hypothesis's length on (it had finished,
  or the search had stopped)."""
  def back(hyp, xs):
    t, parents, cross = xs
    ran = t < steps
    parent = _gather(parents, hyp)                                  # [B, 1]
    weights = jnp.where((t < lengths)[:, None, None, None], _gather(cross, parent)[:, 0], 0.0)
    return jnp.where(ran, parent, hyp), weights

  xs = (jnp.arange(parents.shape[0]), parents, cross)
  _, align = jax.lax.scan(back, best, xs, reverse=True)
  return jnp.moveaxis(align, 0, 1)


def check_beam(beam_size: int, where: str = "beam_size") -> int:
  """`beam_size`, if a beam can be that wide; else a UsageError naming `where` (a flag, a field)."""
  if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
    raise UsageError(f"{where}={beam_size}: the beam size must be at least 1")
  return beam_size


def decode(model, variables, src, max_len: int, beam_size: int = 1, alpha: float = 0.6,
           sampling: Sampling | None = None, nbest: int = 0) -> Decoded:
  """Greedy when `beam_size` is 1, beam search otherwise; sampling when `sampling` is given;
  with `nbest`, beam search's `nbest` best hypotheses too (a beam of one lists its one)."""
  check_beam(beam_size)
  if not 0 <= nbest <= beam_size:
    raise ValueError(f"an n-best list of {nbest} needs a beam of at least {nbest}, not {beam_size}")
  if nbest:
    return beam_search(model, variables, src, max_len, beam_size, alpha, nbest)
  if sampling is not None:
    if beam_size != 1:
      raise ValueError(f"sampling draws one hypothesis per sentence; the beam size must be 1, not {beam_size}")
    return greedy(model, variables, src, max_len, sample_choice(sampling))
  if beam_size == 1:
    return greedy(model, variables, src, max_len)
  return beam_search(model, variables, src, max_len, beam_size, alpha)


def make_decoder(model, max_len: int, beam_size: int = 1, alpha: float = 0.6,
                 sampling: Sampling | None = None, nbest: int = 0):
  """A jit-compiled `fn(variables, src) -> Decoded`; one compilation per source shape."""
  return jax.jit(lambda variables, src: decode(model, variables, src, max_len, beam_size, alpha,
                                               sampling, nbest))
