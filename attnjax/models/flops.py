"""Matrix-product FLOPs of the models, from their config sections (2mnk per product).

Counted: every dense layer, the recurrent cells' gate products, attention's scores and
weighted sums, and the output projection. Not counted: embeddings (gathers), norms,
softmaxes, elementwise gates. A training step is about three forward passes (forward,
and a backward pass twice as dear). Covers the Transformer (encoder and decoder layers of
one count), the RNN without attention (`seq2seq`, one direction or both) and the Luong RNN
(bidirectional encoder, general score, input feeding), one layer each: the models of the
speed protocol (`attnjax/speed/bench.py`) and of the parallelism experiment. And the minGRU /
minLSTM family at any depth, with or without attention (`attnjax/models/minrnn.py`): per
layer and token, the gates' Linear maps D -> G H (G = 2 for minGRU, 3 for minLSTM) and W_down
H -> D; its walk through time is elementwise, not counted.
"""


def _rnn_kind(cfg) -> str:
  kinds = {("seq2seq", False): "seq2seq", ("seq2seq", True): "seq2seq_bidirectional",
           ("luong", True): "luong"}
  kind = kinds.get((cfg.decoder, bool(cfg.bidirectional)))
  if kind is None or cfg.num_layers != 1:
    raise ValueError(f"no FLOP count for the RNN with decoder={cfg.decoder!r}, "
                     f"bidirectional={cfg.bidirectional}, num_layers={cfg.num_layers}")
  return kind


def _check_transformer(cfg) -> None:
  if cfg.num_encoder_layers != cfg.num_decoder_layers:
    raise ValueError("the Transformer's FLOP count needs as many encoder as decoder layers")


def _min_rnn(cfg, b: int, s: int, t: int, v: int, per_sentence: int) -> tuple[float, float]:
  """minGRU / minLSTM: (the source side, once for `b` sentences; the target side for `t` tokens
  of `per_sentence` rows each): encoder layers, key projection, decoder layers, attention
  (scores, weighted sums and W_c), output layer. The top encoder layer of the bottleneck
  variant has no W_down, and its c enters the decoder through W_c, once per sentence."""
  d, h, layers = cfg.embed_dim, cfg.hidden_dim, cfg.num_layers
  gates = 2 if cfg.cell == "gru" else 3
  layer = lambda tokens: 2 * tokens * (d * gates * h + h * d)           # gates, W_down
  if cfg.attention == "luong":
    keys = 0 if cfg.score in ("dot", "scaled_dot") else 2 * b * s * d * d  # W_a h_j (U_a h_j)
    source = layers * layer(b * s) + keys
    step = 2 * 2 * s * d + 2 * 2 * d * d                                 # scores and sums, W_c
    if cfg.score in ("concat", "additive"):
      step += 2 * d * d                                                  # W_a s_t; v_a as a score
    target = layers * layer(per_sentence * t) + per_sentence * t * (step + 2 * d * v)
    return source, target
  source = layers * layer(b * s) - 2 * b * s * h * d + 2 * b * h * d
  return source, layers * layer(per_sentence * t) + 2 * per_sentence * t * d * v


def forward(cfg, vocab: int, batch: int, src_len: int, tgt_len: int) -> float:
  """One teacher-forced forward pass over a [batch, src_len] source and [batch, tgt_len] target."""
  b, s, t, v = batch, src_len, tgt_len, vocab
  if cfg.family == "minrnn":
    return sum(_min_rnn(cfg, b, s, t, v, b))
  if cfg.family == "transformer":
    _check_transformer(cfg)
    d, f, n = cfg.d_model, cfg.d_ff, cfg.num_encoder_layers
    attend = lambda q, k: 2 * 2 * b * q * k * d                        # scores and values
    encoder = 2 * b * s * d * (3 * d + d + 2 * f) + attend(s, s)
    decoder = (2 * b * t * d * (3 * d + d + d + d + 2 * f) + 2 * b * s * d * 2 * d
               + attend(t, t) + attend(t, s))
    return n * (encoder + decoder) + 2 * b * t * d * v
  e, h = cfg.embed_dim, cfg.hidden_dim
  hd = h // 2                                                           # per direction
  bidirectional = 2 * 2 * b * s * (e + hd) * 4 * hd + 2 * 2 * b * h * h  # both directions, bridge
  kind = _rnn_kind(cfg)
  if kind == "seq2seq":
    return 2 * b * (s + t) * (e + h) * 4 * h + 2 * b * t * h * v
  if kind == "seq2seq_bidirectional":
    return bidirectional + 2 * b * t * (e + h) * 4 * h + 2 * b * t * h * v
  encoder = bidirectional
  keys = 2 * b * s * h * h                                              # W_a h_j, once
  step = 2 * b * (e + h + h) * 4 * h + 2 * 2 * b * s * h + 2 * b * 2 * h * h
  return encoder + keys + t * step + 2 * b * t * h * v


def rnn_attention(cfg, batch: int, src_len: int, tgt_len: int) -> float | None:
  """The part of `forward` that an attentive RNN spends on attention's n x n work, its scores and
  weighted sums: 2 x 2 x src_len x width a target token, width being the state attention reads
  (the LSTM's hidden state, the minGRU's stream); None for a model without it (or a Transformer,
  whose attention `forward` counts per layer)."""
  if cfg.family == "minrnn" and cfg.attention == "luong":
    width = cfg.embed_dim
  elif cfg.family == "rnn" and cfg.decoder == "luong":
    width = cfg.hidden_dim
  else:
    return None
  return 2 * 2 * batch * tgt_len * src_len * width


def decode(cfg, vocab: int, batch: int, beam: int, src_len: int, tgt_len: int) -> float:
  """Decoding tgt_len tokens for `batch` sources with `beam` hypotheses each (1 = greedy)."""
  b, k, s, t, v = batch, beam, src_len, tgt_len, vocab
  bk = b * k
  if cfg.family == "minrnn":
    return sum(_min_rnn(cfg, b, s, t, v, bk))
  if cfg.family == "transformer":
    _check_transformer(cfg)
    d, f, n = cfg.d_model, cfg.d_ff, cfg.num_encoder_layers
    encoder = n * (2 * b * s * d * (3 * d + d + 2 * f) + 2 * 2 * b * s * s * d)
    cross_kv = n * 2 * b * s * d * 2 * d
    per_token = n * 2 * bk * d * (3 * d + d + d + d + 2 * f) + n * 2 * 2 * bk * s * d + 2 * bk * d * v
    self_attention = n * 2 * 2 * bk * d * (t * (t + 1) // 2)           # over the growing prefix
    return encoder + cross_kv + t * per_token + self_attention
  e, h = cfg.embed_dim, cfg.hidden_dim
  hd = h // 2
  bidirectional = 2 * 2 * b * s * (e + hd) * 4 * hd + 2 * 2 * b * h * h
  kind = _rnn_kind(cfg)
  if kind in ("seq2seq", "seq2seq_bidirectional"):
    encoder = 2 * b * s * (e + h) * 4 * h if kind == "seq2seq" else bidirectional
    return encoder + t * (2 * bk * (e + h) * 4 * h + 2 * bk * h * v)
  encoder = bidirectional + 2 * b * s * h * h
  step = 2 * bk * (e + h + h) * 4 * h + 2 * 2 * bk * s * h + 2 * bk * 2 * h * h + 2 * bk * h * v
  return encoder + t * step
