"""Matrix-product FLOPs of the models, from their config sections (2mnk per product).

Counted: every dense layer, the recurrent cells' gate products, attention's scores and
weighted sums, and the output projection. Not counted: embeddings (gathers), norms,
softmaxes, elementwise gates. A training step is about three forward passes (forward,
and a backward pass twice as dear). Covers the Transformer (encoder and decoder layers of
one count), the RNN without attention (`seq2seq`, one direction or both) and the Luong RNN
(bidirectional encoder, general score, input feeding), one layer each: the models of the
speed protocol (`attnjax/bench.py`) and of the parallelism experiment.
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


def forward(cfg, vocab: int, batch: int, src_len: int, tgt_len: int) -> float:
  """One teacher-forced forward pass over a [batch, src_len] source and [batch, tgt_len] target."""
  b, s, t, v = batch, src_len, tgt_len, vocab
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


def decode(cfg, vocab: int, batch: int, beam: int, src_len: int, tgt_len: int) -> float:
  """Decoding tgt_len tokens for `batch` sources with `beam` hypotheses each (1 = greedy)."""
  b, k, s, t, v = batch, beam, src_len, tgt_len, vocab
  bk = b * k
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
