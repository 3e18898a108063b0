"""RNN encoder-decoders: two decoders through the fixed-size bottleneck and two attentive ones.

* `seq2seq`: the decoder sees the source only through its initial state
  (Sutskever et al. 2014), optionally with the source words reversed.
* `encdec`: RNNencdec (Cho et al. 2014), the no-attention baseline of Bahdanau et al. 2015:
  one fixed summary c of the source enters every decoder step and the readout.
* `bahdanau`: RNNsearch, attention on the previous decoder state (Bahdanau et al. 2015).
* `luong`: global attention on the current decoder state, with or without input feeding
  (Luong et al. 2015).

Each decoder has a `recurrence` (one time step, carried state) and an `output` (from the
step's features to logits, batched over time when it can be). Teacher forcing scans
`recurrence` over the target with `nn.scan`; `decode_step` calls the same `recurrence` once,
so step-wise decoding computes what teacher forcing computes. Each step knows its target
position t (local-m attention and the permute intervention read it).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.experimental import rnn as cudnn_rnn

from attnjax.tokens import PAD_ID
from attnjax.models.attention import Attention
from attnjax.models.intervention import Intervention
from attnjax.models.layers import Dense, Dropout, Embed

CELLS = {'lstm': nn.OptimizedLSTMCell, 'gru': nn.GRUCell}
ENCODER_IMPLS = ('scan', 'cudnn')
DECODERS = ('seq2seq', 'encdec', 'bahdanau', 'luong')
ATTENTIVE = ('bahdanau', 'luong')


def _output_of(carry):
  """A layer's output h from its carry: (c, h) for an LSTM, h for a GRU."""
  return carry[1] if isinstance(carry, tuple) else carry


def reverse_words(src):
  """Each row's words in reverse order, EOS and padding left in place (Sutskever et al. 2014,
  sec. 3.3): [w_1 .. w_n, EOS, PAD ..] -> [w_n .. w_1, EOS, PAD ..]. src [B, S] -> [B, S]."""
  words = jnp.sum(src != PAD_ID, axis=-1, keepdims=True) - 1  # [B, 1], EOS excluded
  j = jnp.arange(src.shape[1])[None, :]  # [1, S]
  return jnp.take_along_axis(src, jnp.where(j < words, words - 1 - j, j), axis=1)


class Encoder(nn.Module):
  """Embeddings and a stacked, optionally bidirectional RNN over the source, with dropout on
  the embeddings and between layers.

  Sequence lengths keep padding out of every state: each direction stops at the last real
  token, and outputs at padded positions are zero.
  Returns H [B, S, D] (D = 2 * hidden_dim if bidirectional), the final carry of each layer
  (a (forward, backward) pair if bidirectional) and the source mask [B, S].

  `impl`: 'scan' runs Flax cells under `nn.RNN` (a loop of S steps per layer and direction);
  'cudnn' runs each layer as one `jax.experimental.rnn.lstm` call, cuDNN's fused LSTM on a
  GPU, and its reference (`lstm_ref`, a scan with the same weights) elsewhere. cuDNN's layout
  is one flat weight vector per layer (`cudnn_weights`) with PyTorch's gate order and two
  biases; `scan_to_cudnn` converts scan parameters, and both give the same outputs. LSTM and
  float32 only.
  """

  vocab_size: int
  cell: str
  embed_dim: int
  hidden_dim: int  # per direction
  num_layers: int
  bidirectional: bool
  dropout: float
  dtype: Any = jnp.float32
  impl: str = 'scan'

  @nn.compact
  def __call__(self, src, train: bool):
    mask = src != PAD_ID  # [B, S]
    lengths = jnp.sum(mask, axis=-1)  # [B]
    x = Embed(self.vocab_size, self.embed_dim, dtype=self.dtype, name='embed')(src)
    finals = []
    for layer in range(self.num_layers):
      x = Dropout(self.dropout)(x, deterministic=not train)
      if self.impl == 'cudnn':
        final, x = self._cudnn_layer(layer, x, lengths.astype(jnp.int32))
        x = jnp.where(mask[..., None], x, 0.0)
        finals.append(final)
        continue
      cell = lambda: CELLS[self.cell](self.hidden_dim, dtype=self.dtype)
      if self.bidirectional:  # outputs [B, S, 2 * hidden]
        rnn = nn.Bidirectional(nn.RNN(cell()), nn.RNN(cell()), name=f'layer_{layer}')
      else:
        rnn = nn.RNN(cell(), name=f'layer_{layer}')
      final, x = rnn(x, seq_lengths=lengths, return_carry=True)
      x = jnp.where(mask[..., None], x, 0.0)  # [B, S, D]
      finals.append(final)
    return x, tuple(finals), mask

  def _cudnn_layer(self, layer: int, x, lengths):
    """One (bi)LSTM layer through jax.experimental.rnn; its final carry as the scan's ((c, h))."""
    size, hidden = x.shape[-1], self.hidden_dim
    directions = 2 if self.bidirectional else 1
    weights = self.param(f'cudnn_weights_{layer}', lambda key: cudnn_rnn.init_lstm_weight(
        key, size, hidden, 1, self.bidirectional))
    zeros = jnp.zeros((directions, x.shape[0], hidden), jnp.float32)
    args = (size, hidden, 1, 0.0, self.bidirectional)
    if jax.default_backend() == 'gpu':
      y, h, c = cudnn_rnn.lstm(x, zeros, zeros, weights, lengths, *args)
    else:
      unpacked = cudnn_rnn.unpack_lstm_weights(weights, size, hidden, 1, self.bidirectional)
      y, h, c = cudnn_rnn.lstm_ref(x, zeros, zeros, *unpacked, lengths, *args)
    carries = [(c[d], h[d]) for d in range(directions)]
    return (tuple(carries) if self.bidirectional else carries[0]), y


def scan_to_cudnn(params, num_layers: int, bidirectional: bool):
  """An Encoder's 'scan' parameters as its 'cudnn' ones (same outputs): per layer and
  direction, the OptimizedLSTMCell's kernels [in, H] per gate (i, f, g, o; biases on the
  hidden side) packed into cuDNN's flat vector (W_ih, W_hh per direction, then b_ih, b_hh)."""
  out = {'embed': params['embed']}
  directions = 2 if bidirectional else 1
  for layer in range(num_layers):
    weights, biases = [], []
    for d in range(directions):
      cell = params[f'OptimizedLSTMCell_{layer * directions + d}']
      w_ih = jnp.concatenate([cell[f'i{g}']['kernel'].T for g in 'ifgo'], axis=0)
      w_hh = jnp.concatenate([cell[f'h{g}']['kernel'].T for g in 'ifgo'], axis=0)
      b_hh = jnp.concatenate([cell[f'h{g}']['bias'] for g in 'ifgo'], axis=0)
      weights += [w_ih.ravel(), w_hh.ravel()]
      biases += [jnp.zeros_like(b_hh), b_hh]
    out[f'cudnn_weights_{layer}'] = jnp.concatenate(weights + biases)
  return out


class Bridge(nn.Module):
  """The decoder's initial state, layer by layer, from the encoder's final states.

  Unidirectional: the final state itself. Bidirectional: s_0 = tanh(W_s [h->_S; h<-_1])
  for each part of each layer's carry (Bahdanau et al. 2015, A.2.2, with both directions).
  """

  hidden_dim: int
  bidirectional: bool
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, finals):
    if not self.bidirectional:
      return finals
    bridged = []
    for layer, (forward, backward) in enumerate(finals):
      parts, treedef = jax.tree.flatten(forward)
      merged = [
          jnp.tanh(Dense(self.hidden_dim, dtype=self.dtype, name=f'layer_{layer}_{i}')(
              jnp.concatenate([f, b], axis=-1))).astype(jnp.float32)  # [B, hidden]
          for i, (f, b) in enumerate(zip(parts, jax.tree.leaves(backward)))]
      bridged.append(jax.tree.unflatten(treedef, merged))
    return tuple(bridged)


class StackedCells(nn.Module):
  """One time step through `num_layers` cells, with dropout between layers."""

  cell: str
  hidden_dim: int
  num_layers: int
  dropout: float
  dtype: Any = jnp.float32

  def setup(self):
    self.layers = [CELLS[self.cell](self.hidden_dim, dtype=self.dtype)
                   for _ in range(self.num_layers)]
    self.drop = Dropout(self.dropout)

  def __call__(self, carry, x, train: bool):
    """carry: one carry per layer; x [B, E] -> (carry, s_t [B, hidden])."""
    new_carry = []
    for layer, layer_carry in zip(self.layers, carry):
      if new_carry:
        x = self.drop(x, deterministic=not train)
      layer_carry, x = layer(layer_carry, x)
      new_carry.append(layer_carry)
    return tuple(new_carry), x


class Decoder(nn.Module):
  """Shared driver: teacher forcing scans `recurrence`; `step` calls it once.

  Subclasses define `setup`, `init_carry(bridged)`, `prepare_memory(states, mask, bridged)`,
  `recurrence(carry, y_emb, at, memory, train) -> (carry, features)`, where `at` holds the
  step's target position 't' [B] (and, for the gold intervention, its 'gold' row [B, S]), and
  `output(features, memory, train) -> (readout, alignment or None)`, where `output` works
  with or without a time axis and `_project(readout, train)` gives the logits: the last
  layer before the vocabulary, which a memory-lean loss projects a chunk at a time.
  """

  vocab_size: int
  cell: str
  hidden_dim: int
  num_layers: int
  dropout: float
  dtype: Any = jnp.float32
  intervention: Intervention | None = None  # the attentive decoders' (attnjax.models.intervention)

  def _cells(self):
    return StackedCells(self.cell, self.hidden_dim, self.num_layers, self.dropout, self.dtype)

  def _project(self, x, train):
    """Output logits [..., V] in float32 from the last hidden layer."""
    return self.projection(self.drop(x, deterministic=not train)).astype(jnp.float32)

  def init_carry(self, bridged):
    return bridged

  def prepare_memory(self, states, mask, bridged):
    """What each step reads from the source: H, its key-side projection and the mask."""
    return {'keys': states, 'prepared_keys': self.attention.prepare_keys(states), 'mask': mask}

  def __call__(self, carry, y_emb, memory, train: bool, gold=None):
    """Teacher forcing: y_emb [B, T, E] -> readout [B, T, D] (before the output projection),
    alignment [B, T, S] or None; `gold` [B, T, S]: the gold intervention's attention."""
    batch, length = y_emb.shape[:2]
    at = {'t': jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))}
    if gold is not None:
      at['gold'] = gold
    scan = nn.scan(
        lambda module, carry, xs, memory: module.recurrence(carry, *xs, memory, train),
        variable_broadcast='params', split_rngs={'params': False, 'dropout': True},
        in_axes=(1, nn.broadcast), out_axes=1)
    _, features = scan(self, carry, (y_emb, at), memory)
    return self.output(features, memory, train)

  def step(self, carry, y_emb, memory, t):
    """One deterministic step at target position t [B]: y_emb [B, E] -> (carry, logits [B, V],
    alignment [B, S])."""
    carry, features = self.recurrence(carry, y_emb, {'t': t}, memory, False)
    readout, alignment = self.output(features, memory, False)
    logits = self._project(readout, False)
    return carry, logits, alignment


class Seq2SeqDecoder(Decoder):
  """The bottleneck: p(y_t | y_<t, x) = softmax(W s_t), with s_0 from the encoder's final
  state only (Sutskever et al. 2014)."""

  def setup(self):
    self.cells = self._cells()
    self.drop = Dropout(self.dropout)
    self.projection = Dense(self.vocab_size, dtype=self.dtype)

  def prepare_memory(self, states, mask, bridged):
    return {}

  def recurrence(self, carry, y_emb, at, memory, train):
    return self.cells(carry, y_emb, train)  # features: s_t

  def output(self, s, memory, train):
    return s, None


class EncDecDecoder(Decoder):
  """RNNencdec (Cho et al. 2014; the baseline of Bahdanau et al. 2015): no attention, but the
  encoder's fixed summary c, the top layer's bridged final state, is read at every step.

  s_0 = the bridged final states, s_i = f(s_{i-1}, [E y_{i-1}; c])   (Cho et al. 2014, eq. 2-3)
  t_i = tanh(W_o [s_i; c; E y_{i-1}]), p(y_i) = softmax(W t_i)       (as RNNsearch's readout)
  """

  def setup(self):
    self.cells = self._cells()
    self.readout = Dense(self.hidden_dim, dtype=self.dtype)
    self.drop = Dropout(self.dropout)
    self.projection = Dense(self.vocab_size, dtype=self.dtype)

  def prepare_memory(self, states, mask, bridged):
    return {'summary': _output_of(bridged[-1])}  # c [B, hidden]

  def recurrence(self, carry, y_emb, at, memory, train):
    c = memory['summary'].astype(y_emb.dtype)
    carry, s = self.cells(carry, jnp.concatenate([y_emb, c], axis=-1), train)
    return carry, (s, y_emb)

  def output(self, features, memory, train):
    s, y_emb = features
    c = memory['summary'].astype(s.dtype)
    if s.ndim == 3:  # teacher forcing: [B, T, hidden]
      c = jnp.broadcast_to(c[:, None, :], s.shape[:2] + c.shape[-1:])
    t = jnp.tanh(self.readout(jnp.concatenate([s, c, y_emb], axis=-1)))  # [..., hidden]
    return t, None


class BahdanauDecoder(Decoder):
  """RNNsearch (Bahdanau et al. 2015).

  e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j), c_i = sum_j a_ij h_j   (eq. 5, 6)
  s_i = f(s_{i-1}, [E y_{i-1}; c_i])                                (eq. 4)
  t_i = tanh(W_o [s_i; c_i; E y_{i-1}]), p(y_i) = softmax(W t_i)    (A.2.2, tanh for maxout)
  With several layers, the top layer's previous output is s_{i-1}.
  """

  def setup(self):
    self.attention = Attention('additive', self.hidden_dim, dtype=self.dtype,
                               intervention=self.intervention)
    self.cells = self._cells()
    self.readout = Dense(self.hidden_dim, dtype=self.dtype)
    self.drop = Dropout(self.dropout)
    self.projection = Dense(self.vocab_size, dtype=self.dtype)

  def recurrence(self, carry, y_emb, at, memory, train):
    s_prev = _output_of(carry[-1])  # [B, hidden]
    context, alignment = self.attention.attend(
        s_prev, memory['keys'], memory['prepared_keys'], memory['mask'], at['t'],
        at.get('gold'))  # [B, Dk], [B, S]
    carry, s = self.cells(carry, jnp.concatenate([y_emb, context], axis=-1), train)
    return carry, (s, context, y_emb, alignment)

  def output(self, features, memory, train):
    s, context, y_emb, alignment = features
    t = jnp.tanh(self.readout(jnp.concatenate([s, context, y_emb], axis=-1)))  # [..., hidden]
    return t, alignment


class LuongDecoder(Decoder):
  """Global or local attention (Luong et al. 2015).

  a_t(j) = softmax_j(score(s_t, h_j)), c_t = sum_j a_t(j) h_j    (eq. 7, 8)
  attentional_state h~_t = tanh(W_c [c_t; s_t])                  (eq. 5)
  p(y_t | y_<t, x) = softmax(W_s h~_t)                           (eq. 6)
  Input feeding (sec. 3.3) concatenates h~_{t-1} to the input embedding; without it the
  RNN runs alone in the scan and attention is one batched call over all steps.
  Local-m attention centres its window on the target position t.
  """

  score: str = 'general'
  input_feeding: bool = True
  local: str = ''
  half_width: int = 10

  def setup(self):
    self.cells = self._cells()
    self.attention = Attention(self.score, self.hidden_dim, dtype=self.dtype, local=self.local,
                               half_width=self.half_width, intervention=self.intervention)
    self.combine = Dense(self.hidden_dim, use_bias=False, dtype=self.dtype)  # W_c
    self.drop = Dropout(self.dropout)
    self.projection = Dense(self.vocab_size, dtype=self.dtype)  # W_s

  def init_carry(self, bridged):
    if not self.input_feeding:
      return bridged
    batch = _output_of(bridged[-1]).shape[0]
    return bridged, jnp.zeros((batch, self.hidden_dim), jnp.float32)  # h~_0

  def attentional_state(self, s, memory, at):
    """h~ = tanh(W_c [c; s]) for s [B, hidden] or [B, T, hidden] (`at`'s leaves: [B] or [B, T])."""
    context, alignment = self.attention.attend(
        s, memory['keys'], memory['prepared_keys'], memory['mask'], at['t'], at.get('gold'))
    combined = jnp.concatenate([context, s.astype(self.dtype)], axis=-1)  # [..., Dk + hidden]
    return jnp.tanh(self.combine(combined)), alignment

  def recurrence(self, carry, y_emb, at, memory, train):
    if not self.input_feeding:
      carry, s = self.cells(carry, y_emb, train)
      return carry, (s, at)
    cells_carry, feed = carry
    cells_carry, s = self.cells(
        cells_carry, jnp.concatenate([y_emb, feed.astype(y_emb.dtype)], axis=-1), train)
    attentional_state, alignment = self.attentional_state(s, memory, at)
    return (cells_carry, attentional_state.astype(jnp.float32)), (attentional_state, alignment)

  def output(self, features, memory, train):
    if self.input_feeding:
      attentional_state, alignment = features
    else:
      s, at = features
      attentional_state, alignment = self.attentional_state(s, memory, at)
    return attentional_state, alignment


class RNNSeq2Seq(nn.Module):
  """RNN encoder-decoder implementing the attnjax model contract.

  Decoding state: {'carry': the decoder's carry (per layer: (c, h) [B, hidden] each for an
  LSTM, h for a GRU; for Luong with input feeding, (that, h~ [B, hidden])), 'memory':
  {'keys': H [B, S, Dk], 'prepared_keys': [B, S, D'], 'mask': [B, S]} for attention,
  {'summary': c [B, hidden]} for encdec, {} for seq2seq; 'step': t [B], the target position}.
  """

  src_vocab_size: int
  tgt_vocab_size: int
  cell: str
  embed_dim: int
  hidden_dim: int
  num_layers: int
  bidirectional: bool
  dropout: float
  decoder: str
  score: str
  input_feeding: bool
  local: str
  local_window: int
  reverse_source: bool
  dtype: Any
  encoder_impl: str
  intervention: Intervention | None = None

  def setup(self):
    per_direction = self.hidden_dim // 2 if self.bidirectional else self.hidden_dim
    self.encoder = Encoder(self.src_vocab_size, self.cell, self.embed_dim, per_direction,
                           self.num_layers, self.bidirectional, self.dropout, self.dtype,
                           self.encoder_impl)
    self.bridge = Bridge(self.hidden_dim, self.bidirectional, self.dtype)
    self.tgt_embed = Embed(self.tgt_vocab_size, self.embed_dim, dtype=self.dtype)
    self.embed_drop = Dropout(self.dropout)
    args = (self.tgt_vocab_size, self.cell, self.hidden_dim, self.num_layers, self.dropout,
            self.dtype)
    if self.intervention is not None and self.decoder not in ATTENTIVE:
      raise ValueError(f'an intervention on the attention needs an attentive decoder '
                       f'({", ".join(ATTENTIVE)}), not {self.decoder!r}')
    if self.decoder == 'seq2seq':
      self.decoder_net = Seq2SeqDecoder(*args)
    elif self.decoder == 'encdec':
      self.decoder_net = EncDecDecoder(*args)
    elif self.decoder == 'bahdanau':
      self.decoder_net = BahdanauDecoder(*args, intervention=self.intervention)
    elif self.decoder == 'luong':
      self.decoder_net = LuongDecoder(*args, intervention=self.intervention, score=self.score,
                                      input_feeding=self.input_feeding, local=self.local,
                                      half_width=self.local_window)
    else:
      raise ValueError(f'RNN decoder {self.decoder!r} is not one of {", ".join(DECODERS)}.')

  def encode(self, src, train: bool = False):
    """src [B, S] -> {'states': H [B, S, Dk], 'final': per-layer carries, 'mask': [B, S]}.

    With `reverse_source` the encoder reads the words last to first; H stays in that order.
    """
    if self.reverse_source:
      src = reverse_words(src)
    states, final, mask = self.encoder(src, train)
    return {'states': states, 'final': final, 'mask': mask}

  def _start(self, src, train):
    encoded = self.encode(src, train)
    bridged = self.bridge(encoded['final'])
    carry = self.decoder_net.init_carry(bridged)
    return carry, self.decoder_net.prepare_memory(encoded['states'], encoded['mask'], bridged)

  def __call__(self, src, tgt_in, train: bool = False, gold=None, features_only: bool = False):
    """Teacher forcing: src [B, S], tgt_in [B, T] -> logits [B, T, V] (float32); `gold`
    [B, T, S]: the gold intervention's attention (`attnjax.models.intervention`). With
    `features_only`, the readout [B, T, D] that `logits_of` projects."""
    carry, memory = self._start(src, train)
    y_emb = self.embed_drop(self.tgt_embed(tgt_in), deterministic=not train)  # [B, T, E]
    readout, alignment = self.decoder_net(carry, y_emb, memory, train, gold)
    if alignment is not None:
      self.sow('intermediates', 'cross_attention', alignment[:, :, None, None, :])  # [B,T,1,1,S]
    return readout if features_only else self.logits_of(readout, train)

  def logits_of(self, readout, train: bool = False):
    """The output layer: readout [..., D] -> logits [..., V] (float32)."""
    return self.decoder_net._project(readout, train)

  def init_decode_state(self, src, max_len: int):
    """Encodes src; `max_len` is unused, as an RNN state does not grow with the output."""
    del max_len
    carry, memory = self._start(src, False)
    return {'carry': carry, 'memory': memory, 'step': jnp.zeros((src.shape[0],), jnp.int32)}

  def decode_step(self, tokens, state):
    """tokens [B] (y_{t-1}; BOS first) -> (logits [B, V] float32, next state)."""
    carry, logits, alignment = self.decoder_net.step(
        state['carry'], self.tgt_embed(tokens), state['memory'], state['step'])
    if alignment is not None:
      self.sow('intermediates', 'cross_attention', alignment[:, None, None, :])  # [B, 1, 1, S]
    return logits, {'carry': carry, 'memory': state['memory'], 'step': state['step'] + 1}
