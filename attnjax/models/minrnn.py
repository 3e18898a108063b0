"""minGRU and minLSTM encoder-decoders: RNNs whose gates read only the input, so that the
recurrence is linear in the state and time can be walked by an associative scan (Feng et al.
2024, "Were RNNs All We Needed?"; Martin & Cundy 2018).

The cells (Feng et al. 2024, sec. 3.1.3 and 3.2.4), with g the appendix's activation:
  minGRU   z_t = sigma(Linear_z(x_t)),  h~_t = g(Linear_h(x_t))
           h_t = (1 - z_t) * h_{t-1} + z_t * h~_t
  minLSTM  f_t = sigma(Linear_f(x_t)),  i_t = sigma(Linear_i(x_t)),  h~_t = g(Linear_h(x_t))
           f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)          (sec. 3.2.3)
           h_t = f'_t * h_{t-1} + i'_t * h~_t
  g(x) = x + 1/2 for x >= 0, sigma(x) otherwise: h~_t > 0, which the log-space form needs.
Both are h_t = a_t * h_{t-1} + b_t, with (a_t, b_t) computed from x_1..x_T at once. Pairs
compose associatively, (a1, b1) then (a2, b2) = (a1 a2, a2 b1 + b2), so `scan='associative'`
(`jax.lax.associative_scan`: O(log T) depth) gives the same h_t as `scan='sequential'`
(`lax.scan`: T dependent steps) up to rounding. `'auto'` takes the sequential walk on a CPU,
the associative one on a GPU or TPU. On 2 CPU cores the log depth has nothing to run in
parallel and costs its extra work: forward and backward of one layer (D = 128, H = 256,
4,096 tokens a step, the variants timed side by side), the associative walk took 1.1-1.3
times as long as the sequential one, minGRU and minLSTM alike, at n = 32 to 1,024
(`experiments/speed/minrnn_scan.md`). On an accelerator the associative walk is the
point: Feng et al. measured it 175 times faster than the sequential form at length 512 on a GPU.

Two forms of the same function: the plain one walks (a_t, b_t); `log_space=True` walks
(log a_t, log b_t) with the combine (la1 + la2, logaddexp(la2 + lb1, lb2)), i.e. a
log-cumsum-exp (Feng et al.'s appendix, after Heinsen 2023). The plain form is the default:
its walk never divides by a running product of gates (the instability that Heinsen's
cumulative-product form has and the log-space form removes), its combine is a multiply-add
where the log-space one needs an exp and a log per element and step: under the associative
walk the log-space form took 1.8-2.7 times as long as the plain one
(`experiments/speed/minrnn_scan.md`). Both walk in float32 whatever the compute dtype.

The stack (Feng et al. 2024, sec. 4 and appendix: up/down projections, residual, norm): each
layer is x + Dropout(W_down h(LayerNorm(x))), where the gates' Linear maps project the
stream's D = embed_dim to the state's H = hidden_dim and W_down brings H back to D. The
bidirectional encoder's layers run a forward and a backward cell of H / 2 each over the
same normed input; their final states, concatenated, are one decoder layer's h_0.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from attnjax.models.attention import Attention
from attnjax.models.intervention import Intervention
from attnjax.models.layers import Dense, Dropout, Embed
from attnjax.tokens import PAD_ID

MIN_CELLS = ('gru', 'lstm')
MIN_ATTENTIONS = ('luong', 'none')
SCANS = ('auto', 'associative', 'sequential')
NEG = -1e30  # log b at padding: b = 0 to float32's precision, and finite, so gradients stay finite
TINY = 1e-30  # h_0 = 0 in log space: log(TINY), finite for the same reason


def resolve_scan(scan: str) -> str:
  """'auto' -> 'sequential' on a CPU, 'associative' on an accelerator (see the module's docstring)."""
  if scan not in SCANS:
    raise ValueError(f'scan={scan!r} is not one of: {", ".join(SCANS)}.')
  if scan == 'auto':
    return 'sequential' if jax.default_backend() == 'cpu' else 'associative'
  return scan


def g(x):
  """Feng et al.'s g: x + 1/2 for x >= 0, sigma(x) otherwise (positive, continuous)."""
  return jnp.where(x >= 0, jax.nn.relu(x) + 0.5, jax.nn.sigmoid(x))


def log_g(x):
  """log g(x), without computing g where it would underflow."""
  return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-x))


def combine(left, right):
  """h -> a1 h + b1, then h -> a2 h + b2: the pair (a1 a2, a2 b1 + b2)."""
  (a1, b1), (a2, b2) = left, right
  return a1 * a2, a2 * b1 + b2


def log_combine(left, right):
  """`combine` on (log a, log b): (la1 + la2, log(exp(la2 + lb1) + exp(lb2)))."""
  (la1, lb1), (la2, lb2) = left, right
  return la1 + la2, jnp.logaddexp(la2 + lb1, lb2)


def walk(a, b, h0, scan: str, log_space: bool):
  """h_t = a_t * h_{t-1} + b_t for t = 1 .. T: a, b [B, T, H] and h0 [B, H] (each as its log
  with `log_space`) -> h [B, T, H] (log h with `log_space`); `scan` 'associative' or 'sequential'."""
  if scan == 'associative':
    prefix_a, prefix_b = jax.lax.associative_scan(
        log_combine if log_space else combine, (a, b), axis=1)  # [B, T, H] each: t steps composed
    if log_space:
      return jnp.logaddexp(prefix_a + h0[:, None], prefix_b)
    return prefix_a * h0[:, None] + prefix_b

  def step(h, pair):
    a_t, b_t = pair  # [B, H] each
    h = jnp.logaddexp(a_t + h, b_t) if log_space else a_t * h + b_t
    return h, h

  _, h = jax.lax.scan(step, h0, (a.swapaxes(0, 1), b.swapaxes(0, 1)))  # [T, B, H]
  return h.swapaxes(0, 1)


class MinCell(nn.Module):
  """One direction of a minGRU or minLSTM over a sequence: x [B, T, D] -> (h [B, T, H], h_T [B, H]).

  The gates' Linear maps are one Dense of 2H (minGRU: z, h~) or 3H (minLSTM: f, i, h~)
  outputs. Where `mask` [B, T] is False, (a_t, b_t) = (1, 0): the state passes unchanged,
  so h_T is the state after the last real position.
  """

  cell: str
  hidden_dim: int
  log_space: bool
  scan: str
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, h0, mask=None):
    gates = 2 if self.cell == 'gru' else 3
    k = Dense(gates * self.hidden_dim, dtype=self.dtype, name='gates')(x).astype(jnp.float32)
    if self.cell == 'gru':
      k_z, k_h = jnp.split(k, 2, axis=-1)  # [B, T, H] each
      mix = k_z  # a = 1 - z = sigma(-k_z), z = sigma(k_z)
    else:
      k_f, k_i, k_h = jnp.split(k, 3, axis=-1)
      mix = jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i)  # log i - log f: f' = sigma(-mix), i' = sigma(mix)
    if self.log_space:
      a, b = -jax.nn.softplus(mix), -jax.nn.softplus(-mix) + log_g(k_h)  # log a, log b
      start = jnp.log(jnp.maximum(h0.astype(jnp.float32), TINY))
    else:
      a, b = jax.nn.sigmoid(-mix), jax.nn.sigmoid(mix) * g(k_h)
      start = h0.astype(jnp.float32)
    if mask is not None:
      a = jnp.where(mask[..., None], a, 0.0 if self.log_space else 1.0)
      b = jnp.where(mask[..., None], b, NEG if self.log_space else 0.0)
    h = walk(a, b, start, resolve_scan(self.scan), self.log_space)  # [B, T, H]
    if self.log_space:
      h = jnp.exp(h)
    return h, h[:, -1]


class MinLayer(nn.Module):
  """One residual block: x + Dropout(W_down h(LayerNorm(x))), x [B, T, D] -> [B, T, D], and the
  final state [B, H] (bidirectional: forward and backward cells of H / 2, concatenated).
  With `project=False`, h [B, T, H] itself (the top encoder layer when nothing attends to it)."""

  cell: str
  embed_dim: int
  hidden_dim: int
  bidirectional: bool
  dropout: float
  log_space: bool
  scan: str
  dtype: Any = jnp.float32
  project: bool = True

  @nn.compact
  def __call__(self, x, h0, mask, train: bool):
    u = nn.LayerNorm(dtype=self.dtype, name='norm')(x)
    cell = lambda size, name: MinCell(self.cell, size, self.log_space, self.scan, self.dtype, name=name)
    if self.bidirectional:
      half = self.hidden_dim // 2
      h_fwd, final_fwd = cell(half, 'forward')(u, h0[:, :half], mask)
      flip = lambda y: jnp.flip(y, axis=1)  # padding first: the state passes it unchanged
      h_bwd, final_bwd = cell(self.hidden_dim - half, 'backward')(
          flip(u), h0[:, half:], None if mask is None else flip(mask))
      h = jnp.concatenate([h_fwd, flip(h_bwd)], axis=-1)  # [B, T, H]
      final = jnp.concatenate([final_fwd, final_bwd], axis=-1)  # [B, H]
    else:
      h, final = cell(self.hidden_dim, 'forward')(u, h0, mask)
    if mask is not None:
      h = jnp.where(mask[..., None], h, 0.0)
    if not self.project:
      return h, final
    down = Dense(self.embed_dim, dtype=self.dtype, name='down')(h.astype(self.dtype))  # [B, T, D]
    return x + Dropout(self.dropout)(down, deterministic=not train), final


def _layers(module, bidirectional: bool, project_top: bool = True):
  return [MinLayer(module.cell, module.embed_dim, module.hidden_dim, bidirectional,
                   module.dropout, module.log_space, module.scan, module.dtype,
                   project=project_top or l < module.num_layers - 1, name=f'layer_{l}')
          for l in range(module.num_layers)]


class MinEncoder(nn.Module):
  """src [B, S] -> H [B, S, D] (normed, zero at padding), each layer's final state [B, H], mask [B, S].

  With `states=False` (no attention reads H) the top layer stops at its cells, and H is their
  output [B, S, H]: a down projection and norm that nothing reads would get no gradient.
  """

  vocab_size: int
  cell: str
  embed_dim: int
  hidden_dim: int
  num_layers: int
  bidirectional: bool
  dropout: float
  log_space: bool
  scan: str
  dtype: Any = jnp.float32
  states: bool = True

  @nn.compact
  def __call__(self, src, train: bool):
    mask = src != PAD_ID  # [B, S]
    x = Embed(self.vocab_size, self.embed_dim, dtype=self.dtype, name='embed')(src)
    x = Dropout(self.dropout)(x, deterministic=not train)  # [B, S, D]
    h0 = jnp.zeros((src.shape[0], self.hidden_dim), jnp.float32)
    finals = []
    for layer in _layers(self, self.bidirectional, project_top=self.states):
      x, final = layer(x, h0, mask, train)
      finals.append(final)
    if not self.states:
      return x, tuple(finals), mask  # [B, S, H], zero at padding
    states = nn.LayerNorm(dtype=self.dtype, name='norm')(x)
    return jnp.where(mask[..., None], states, 0.0), tuple(finals), mask


class MinDecoder(nn.Module):
  """The decoder's layers over y_emb [B, T, D] from per-layer states h_0, then the readout.

  attention='luong': global attention read after the cells, on the top layer's normed output
  s_t (Luong et al. 2015, eq. 5-8): a_t = softmax_j(score(s_t, h_j)), c_t = sum_j a_t(j) h_j,
  h~_t = tanh(W_c [c_t; s_t]), p(y_t) = softmax(W_s h~_t). There is no input feeding: feeding
  h~_{t-1} into step t would make step t depend nonlinearly on step t-1, so no scan could
  compose the steps, and the sequential wall would be back. Attention is one batched call over
  all T queries.
  attention='none': the bottleneck. The source reaches the decoder only as the encoder's final
  states: each layer's initialises that decoder layer's h_0 (Sutskever et al. 2014), and the top
  layer's, c, enters every decoder input as W_c c added to E y_{t-1} (as RNNencdec's
  s_i = f(s_{i-1}, [E y_{i-1}; c]), Cho et al. 2014, eq. 2-3), since the gates' decay would
  otherwise wash h_0 out.
  """

  vocab_size: int
  cell: str
  embed_dim: int
  hidden_dim: int
  num_layers: int
  dropout: float
  log_space: bool
  scan: str
  attention: str = 'luong'
  score: str = 'general'
  dtype: Any = jnp.float32
  intervention: Intervention | None = None

  def setup(self):
    self.layers = _layers(self, False)
    self.norm = nn.LayerNorm(dtype=self.dtype)
    if self.attention == 'luong':
      self.attend = Attention(self.score, self.embed_dim, dtype=self.dtype,
                              intervention=self.intervention)
      self.combine = Dense(self.embed_dim, use_bias=False, dtype=self.dtype)  # W_c
    else:
      self.summary = Dense(self.embed_dim, use_bias=False, dtype=self.dtype)  # W_c of c
    self.drop = Dropout(self.dropout)
    self.projection = Dense(self.vocab_size, dtype=self.dtype)  # W_s

  def prepare_memory(self, states, mask, finals):
    """What every step reads of the source: H, its key-side projection and the mask; or W_c c [B, D]."""
    if self.attention == 'luong':
      return {'keys': states, 'prepared_keys': self.attend.prepare_keys(states), 'mask': mask}
    return {'summary': self.summary(finals[-1].astype(self.dtype))}

  def __call__(self, carry, y_emb, memory, at, train: bool):
    """carry: h_0 per layer [B, H]; y_emb [B, T, D]; `at`: 't' [B, T] (and 'gold' [B, T, S]) ->
    (h_T per layer, readout [B, T, D], alignment [B, T, S] or None)."""
    x = y_emb
    if self.attention == 'none':
      x = x + memory['summary'][:, None]  # [B, T, D]
    finals = []
    for layer, h0 in zip(self.layers, carry):
      x, final = layer(x, h0, None, train)
      finals.append(final)
    s = self.norm(x)  # s_t [B, T, D]
    if self.attention == 'none':
      return tuple(finals), s, None
    context, alignment = self.attend.attend(
        s, memory['keys'], memory['prepared_keys'], memory['mask'], at['t'], at.get('gold'))
    readout = jnp.tanh(self.combine(jnp.concatenate([context, s], axis=-1)))  # h~_t [B, T, D]
    return tuple(finals), readout, alignment

  def project(self, readout, train: bool):
    """Logits [..., V] in float32 from the readout [..., D]."""
    return self.projection(self.drop(readout, deterministic=not train)).astype(jnp.float32)


class MinRNNSeq2Seq(nn.Module):
  """minGRU / minLSTM encoder-decoder implementing the attnjax model contract.

  Teacher forcing walks every layer over the whole target at once (the same scan as the
  encoder); `decode_step` walks it over one position from the carried states, so step-wise
  decoding computes what teacher forcing computes, with O(1) state per layer and step.
  Decoding state: {'carry': h per decoder layer [B, H], 'memory': {'keys': H [B, S, D],
  'prepared_keys': [B, S, D], 'mask': [B, S]} with Luong attention, {'summary': W_c c [B, D]}
  without, 'step': t [B], the target position}.
  """

  src_vocab_size: int
  tgt_vocab_size: int
  cell: str
  embed_dim: int
  hidden_dim: int
  num_layers: int
  bidirectional: bool
  dropout: float
  attention: str
  score: str
  log_space: bool
  scan: str
  dtype: Any
  intervention: Intervention | None = None

  def setup(self):
    if self.intervention is not None and self.attention == 'none':
      raise ValueError("an intervention on the attention needs attention='luong', not 'none'")
    common = (self.cell, self.embed_dim, self.hidden_dim, self.num_layers, self.bidirectional,
              self.dropout, self.log_space, self.scan, self.dtype)
    self.encoder = MinEncoder(self.src_vocab_size, *common, states=self.attention == 'luong')
    self.tgt_embed = Embed(self.tgt_vocab_size, self.embed_dim, dtype=self.dtype)
    self.embed_drop = Dropout(self.dropout)
    self.decoder_net = MinDecoder(
        self.tgt_vocab_size, self.cell, self.embed_dim, self.hidden_dim, self.num_layers,
        self.dropout, self.log_space, self.scan, self.attention, self.score, self.dtype,
        self.intervention)

  def encode(self, src, train: bool = False):
    """src [B, S] -> {'states': H [B, S, D] ([B, S, H] without attention, see MinEncoder),
    'final': h_S per layer [B, H], 'mask': [B, S]}."""
    states, final, mask = self.encoder(src, train)
    return {'states': states, 'final': final, 'mask': mask}

  def _start(self, src, train):
    encoded = self.encode(src, train)
    memory = self.decoder_net.prepare_memory(encoded['states'], encoded['mask'], encoded['final'])
    return encoded['final'], memory

  def __call__(self, src, tgt_in, train: bool = False, gold=None, features_only: bool = False):
    """Teacher forcing: src [B, S], tgt_in [B, T] -> logits [B, T, V] (float32); `gold`
    [B, T, S]: the gold intervention's attention. With `features_only`, the readout [B, T, D]
    that `logits_of` projects."""
    carry, memory = self._start(src, train)
    y_emb = self.embed_drop(self.tgt_embed(tgt_in), deterministic=not train)  # [B, T, D]
    batch, length = tgt_in.shape
    at = {'t': jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))}
    if gold is not None:
      at['gold'] = gold
    _, readout, alignment = self.decoder_net(carry, y_emb, memory, at, train)
    if alignment is not None:
      self.sow('intermediates', 'cross_attention', alignment[:, :, None, None, :])  # [B,T,1,1,S]
    return readout if features_only else self.logits_of(readout, train)

  def logits_of(self, readout, train: bool = False):
    """The output layer: readout [..., D] -> logits [..., V] (float32)."""
    return self.decoder_net.project(readout, train)

  def init_decode_state(self, src, max_len: int):
    """Encodes src; `max_len` is unused, as the state does not grow with the output."""
    del max_len
    carry, memory = self._start(src, False)
    return {'carry': carry, 'memory': memory, 'step': jnp.zeros((src.shape[0],), jnp.int32)}

  def decode_step(self, tokens, state):
    """tokens [B] (y_{t-1}; BOS first) -> (logits [B, V] float32, next state)."""
    y_emb = self.tgt_embed(tokens[:, None])  # [B, 1, D]
    carry, readout, alignment = self.decoder_net(
        state['carry'], y_emb, state['memory'], {'t': state['step'][:, None]}, False)
    if alignment is not None:
      self.sow('intermediates', 'cross_attention', alignment[:, 0, None, None, :])  # [B, 1, 1, S]
    logits = self.logits_of(readout[:, 0])
    return logits, {'carry': carry, 'memory': state['memory'], 'step': state['step'] + 1}
