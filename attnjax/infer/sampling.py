r"""Drawing a token from the model's distribution: tempered, and restricted to the top k
tokens or to the nucleus, the fewest most probable tokens holding probability p (Holtzman
et al. 2020); seeded, one draw per row of a [B, V] batch of log-probabilities.

Neither restriction sorts the vocabulary: a sort of [B, V] every decoder step costs several
times the step itself. The k-th largest value lies in the k chunks of the vocabulary with
the highest maxima, so top-k looks only there. The nucleus is drawn by rejection: a draw
from the whole distribution is kept when the tokens more probable than it hold less than p
(a draw that lands in the nucleus, which holds at least p, so few rows draw twice), which
gives the nucleus's renormalised distribution exactly. The noise is the counter-based
`hashed_bits`, which XLA:CPU fuses into the arithmetic, where `jax.random`'s threefry
materialises a [B, V] array of bits every step.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from attnjax.models.layers import hashed_bits

REJECTION_ROUNDS = 16  # nucleus draws before falling back to the exact threshold

class Sampling(NamedTuple):
  """How to draw each token: from the top_k tokens (0 = all), from the nucleus of mass top_p
  (1.0 = all), after dividing the log-probabilities by temperature; seeded."""
  top_k: int = 0
  top_p: float = 1.0
  temperature: float = 1.0
  seed: int = 0

  @classmethod
  def parse(cls, spec: str, temperature: float = 1.0, seed: int = 0) -> "Sampling":
    """'topk:K' or 'nucleus:P' (the command line's form); ValueError saying what is wrong."""
    if not temperature > 0:
      raise ValueError(f"--temperature={temperature} must be positive")
    kind, _, value = spec.partition(":")
    try:
      if kind == "topk" and int(value) >= 1:
        return cls(top_k=int(value), temperature=temperature, seed=seed)
      if kind == "nucleus" and 0 < float(value) <= 1:
        return cls(top_p=float(value), temperature=temperature, seed=seed)
    except ValueError:
      pass
    raise ValueError(f"--sampling={spec}: use topk:K with K >= 1 or nucleus:P with 0 < P <= 1")




def argmax(x):
  """jnp.argmax over the last axis (the first index of the maximum), written as a max and
  a min: XLA:CPU runs this 2-3x faster than its variadic argmax reduction on [64, 8000]."""
  top = jnp.max(x, axis=-1, keepdims=True)
  index = jnp.arange(x.shape[-1], dtype=jnp.int32)
  return jnp.min(jnp.where(x == top, index, x.shape[-1]), axis=-1)


def chunk_size(vocab: int, most: int = 128, fewest: int = 16) -> int:
  """The largest divisor of `vocab` up to `most`; the whole vocabulary when that is under
  `fewest` (then a chunked selection is a plain one)."""
  size = max(c for c in range(1, most + 1) if vocab % c == 0)
  return size if size >= fewest else vocab


def sample_choice(sampling: Sampling):
  """`choose(log_probs [B, V], t) -> tokens [B]` drawing step t's tokens as `sampling` says."""
  key = jax.random.key(sampling.seed)

  def choose(log_probs, t):
    x = log_probs / sampling.temperature
    step_key = jax.random.fold_in(key, t)
    if sampling.top_k > 0 and sampling.top_p >= 1.0:
      return _draw_top_k(x, sampling.top_k, step_key)
    if sampling.top_p < 1.0 and sampling.top_k == 0:
      return _draw_nucleus(x, sampling.top_p, step_key)
    return _gumbel_argmax(restrict(x, sampling.top_k, sampling.top_p), step_key)

  return choose


def restrict(log_probs, top_k: int = 0, top_p: float = 1.0):
  """log_probs [B, V] with every token outside the top k, or outside the nucleus (the most
  probable tokens whose mass reaches top_p, the most probable always in), set to -inf.
  Tokens tied with the last one admitted are admitted too."""
  if top_k > 0:
    log_probs = jnp.where(log_probs >= _kth_largest(log_probs, top_k), log_probs, -jnp.inf)
  if top_p < 1.0:
    keys = _order_keys(log_probs)
    least = _least_key_below(keys, jax.nn.softmax(log_probs, axis=-1), top_p)
    log_probs = jnp.where(keys >= least, log_probs, -jnp.inf)
  return log_probs


def _uniform(key, shape):
  """Uniform floats in (0, 1), never 0 or 1."""
  return (hashed_bits(key, shape) >> 8).astype(jnp.float32) * 2.0 ** -24 + 2.0 ** -25


def _gumbel_argmax(x, key):
  """The Gumbel-max trick, argmax(x + G) over the last axis: a draw from softmax(x)."""
  return argmax(x - jnp.log(-jnp.log(_uniform(key, x.shape))))


# ---------------------------------------------------------------- top-k


def _top_chunks(x, k: int):
  """(the k chunks of each row with the highest maxima [B, k], the chunks' values
  [B, k * size]), or None where k chunks would cover half the vocabulary or more."""
  batch, vocab = x.shape
  size = chunk_size(vocab)
  chunks = vocab // size
  if 2 * k > chunks:
    return None
  blocks = x.reshape(batch, chunks, size)
  rows = jnp.arange(batch)

  def pick(i, carry):
    maxima, picked = carry
    best = argmax(maxima)                                                  # [B]
    return maxima.at[rows, best].set(-jnp.inf), picked.at[:, i].set(best)

  maxima = jnp.max(blocks, axis=-1)                                        # [B, chunks]
  _, picked = jax.lax.fori_loop(0, k, pick, (maxima, jnp.zeros((batch, k), jnp.int32)))
  return picked, blocks[rows[:, None], picked].reshape(batch, k * size)


def _top_k_candidates(x, k: int):
  """(the chunks searched [B, k], or None for the whole row; their values [B, N]; which of
  those values are in the top k [B, N], ties at the k-th included). The top k lie in the k
  chunks with the highest maxima: each holds a value at or above anything outside them."""
  top = _top_chunks(x, k)
  picked, values = (None, x) if top is None else top
  keys = _order_keys(values)
  return picked, values, keys >= _least_key_below(keys, jnp.ones_like(values), k)


def _kth_largest(x, k: int):
  """[B, V] -> [B, 1], each row's k-th largest value (`lax.top_k(x, k)[0][:, -1:]`)."""
  _, values, admitted = _top_k_candidates(x, k)
  return jnp.min(jnp.where(admitted, values, jnp.inf), axis=-1, keepdims=True)


def _draw_top_k(x, k: int, key):
  """A draw from softmax(x) restricted to the top k tokens, made among the candidates only."""
  picked, values, admitted = _top_k_candidates(x, k)
  index = _gumbel_argmax(jnp.where(admitted, values, -jnp.inf), key)       # into the candidates
  if picked is None:
    return index
  size = values.shape[-1] // k
  chunk = jnp.take_along_axis(picked, (index // size)[:, None], axis=-1)[:, 0]
  return chunk * size + index % size


# ---------------------------------------------------------------- the nucleus


def _order_keys(x):
  """float32 -> uint32 in the same order (-inf lowest), so that a bisection over the
  integers visits every float between two values."""
  bits = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
  return jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(1 << 31))


def _least_key_below(keys, weights, limit):
  """[B, N] keys and weights -> [B, 1]: the smallest t with sum(weights[keys > t]) < limit,
  by 32 halvings of the uint32 range (exact). The tokens with keys >= t are those whose
  larger tokens weigh less than `limit`: the top k (weights 1, limit k), the nucleus
  (weights the probabilities, limit p)."""
  def halve(_, bounds):
    lo, hi = bounds
    mid = lo + (hi - lo) // 2
    below = jnp.sum(jnp.where(keys > mid, weights, 0.0), axis=-1, keepdims=True) < limit
    return jnp.where(below, lo, mid + 1), jnp.where(below, mid, hi)
  bounds = (jnp.min(keys, axis=-1, keepdims=True), jnp.max(keys, axis=-1, keepdims=True))
  return jax.lax.fori_loop(0, 32, halve, bounds)[1]


def _draw_nucleus(x, top_p: float, key):
  """A draw from softmax(x) restricted to its nucleus, by rejection (module docstring): each
  round draws every row from the whole distribution by inverse CDF (a chunk, then a token
  inside it) and keeps the draws whose more probable tokens hold less than top_p. Rows still
  without a draw after REJECTION_ROUNDS take one from the exact threshold."""
  batch, vocab = x.shape
  size = chunk_size(vocab)
  probs = jax.nn.softmax(x, axis=-1)
  blocks = probs.reshape(batch, vocab // size, size)
  cum = jnp.cumsum(jnp.sum(blocks, axis=-1), axis=-1)                      # [B, chunks]
  rows = jnp.arange(batch)

  def draw(r):
    target = _uniform(jax.random.fold_in(key, r), (batch, 1)) * cum[:, -1:]
    chunk = jnp.minimum(jnp.sum(cum < target, axis=-1), cum.shape[-1] - 1)  # [B]
    before = jnp.where(chunk > 0, cum[rows, jnp.maximum(chunk - 1, 0)], 0.0)[:, None]
    inside = jnp.cumsum(blocks[rows, chunk], axis=-1)                       # [B, size]
    return chunk * size + jnp.minimum(jnp.sum(inside < target - before, axis=-1), size - 1)

  def in_nucleus(tokens):
    own = jnp.take_along_axis(x, tokens[:, None], axis=-1)
    return jnp.sum(jnp.where(x > own, probs, 0.0), axis=-1) < top_p

  def round_(carry):
    r, tokens, done = carry
    drawn = draw(r)
    keep = ~done & in_nucleus(drawn)
    return r + 1, jnp.where(keep, drawn, tokens), done | keep

  carry = (jnp.int32(0), jnp.zeros((batch,), jnp.int32), jnp.zeros((batch,), bool))
  _, tokens, done = jax.lax.while_loop(
      lambda c: (c[0] < REJECTION_ROUNDS) & ~jnp.all(c[2]), round_, carry)
  exact = lambda: _gumbel_argmax(restrict(x, top_p=top_p), jax.random.fold_in(key, REJECTION_ROUNDS))
  return jax.lax.cond(jnp.all(done), lambda: tokens, lambda: jnp.where(done, tokens, exact()))
