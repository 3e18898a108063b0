"""Model families behind one contract; `build(cfg, src_vocab_size, tgt_vocab_size)` picks one.

Every model has `__call__(src, tgt_in, train)`, `encode(src, train)`,
`init_decode_state(src, max_len)` and `decode_step(tokens, state)`, and sows its attention
maps at the top level under 'intermediates' ('cross_attention' and, for the Transformer,
'encoder_self_attention' and 'decoder_self_attention'). A decoding-state leaf whose shape
depends on `max_len` (the Transformer's key/value cache) holds zeros where nothing has been
written and is read only where written: decoding allocates it short and pads it as the
output grows (`attnjax/infer/decode.py`).

`__call__(..., features_only=True)` returns the last layer before the vocabulary, which
`logits_of` projects (the loss, `loss.py`, can then project a chunk of tokens at a time).
`intervene(model, Intervention(...))` replaces the cross-attention, `__call__(..., gold=)`
giving the gold intervention's weights; the Transformer reads head gates from an optional
'gates' collection (`intervention.py`) and packed rows from `packing=`.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from attnjax.models.attention import LOCALS, SCORES
from attnjax.models.intervention import Intervention
from attnjax.models.intervention import gates as intervention_gates
from attnjax.models.minrnn import MIN_ATTENTIONS, MIN_CELLS, SCANS, MinRNNSeq2Seq
from attnjax.models.rnn import ATTENTIVE, CELLS, DECODERS, ENCODER_IMPLS, RNNSeq2Seq
from attnjax.models.transformer import NORMS, POSITIONS, Transformer
from attnjax.tokens import UNK_ID

FAMILIES = ('rnn', 'transformer', 'minrnn')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}

__all__ = ['build', 'init_params', 'intervene', 'Intervention', 'MinRNNSeq2Seq', 'RNNSeq2Seq',
           'Transformer']


def _get(cfg, field):
  if field not in cfg:
    raise ValueError(f'model.{field} is missing; add it to the model section of the config.')
  return cfg[field]


def _choice(cfg, field, choices):
  value = _get(cfg, field)
  if value not in choices:
    raise ValueError(f'model.{field}={value!r} is not one of: {", ".join(choices)}.')
  return value


def _positive(cfg, field):
  value = _get(cfg, field)
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise ValueError(f'model.{field}={value!r} must be a positive integer.')
  return value


def _rate(cfg, field):
  value = _get(cfg, field)
  if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
    raise ValueError(f'model.{field}={value!r} must be a probability in [0, 1).')
  return float(value)


# Fields of a model's dataclass that its config section does not set: the vocabularies (the
# tokenizer's), the dtype (`model.dtype` names it) and the intervention (`intervene`).
NOT_CONFIG = ('parent', 'name', 'src_vocab_size', 'tgt_vocab_size', 'dtype', 'intervention')
LUONG_ONLY = ('score', 'input_feeding', 'local', 'local_window')  # the RNN fields Luong's decoder reads


def config_fields(module) -> tuple[str, ...]:
  """The model-section fields that `module` (a model class) takes, each by its own name: the
  config's defaults (`attnjax/config.py`) are the one home of their values."""
  return tuple(f.name for f in dataclasses.fields(module) if f.init and f.name not in NOT_CONFIG)


def _read(module, cfg, choices: dict, **given):
  """`module`'s keyword arguments from the model section: `given` (values checked against other
  fields), then every other config field by name, a string checked against `choices[name]`, an
  int as a positive integer, a float as a probability, a bool as a flag."""
  types = {f.name: getattr(f.type, '__name__', f.type) for f in dataclasses.fields(module)}
  read = {'int': _positive, 'float': _rate, 'bool': lambda cfg, field: bool(_get(cfg, field))}
  kwargs = {}
  for field in config_fields(module):
    if field in given:
      continue
    if field in choices:
      kwargs[field] = _choice(cfg, field, choices[field])
    elif types[field] in read:
      kwargs[field] = read[types[field]](cfg, field)
    else:
      raise TypeError(f'{module.__name__}.{field}: a {types[field]} field needs its choices here')
  return {**kwargs, **given}


def _recurrent_width(cfg) -> dict:
  """hidden_dim and bidirectional of a recurrent family, checked: each direction gets half."""
  hidden_dim = _positive(cfg, 'hidden_dim')
  bidirectional = bool(_get(cfg, 'bidirectional'))
  if bidirectional and hidden_dim < 2:
    raise ValueError(f'model.hidden_dim={hidden_dim} must be at least 2 with '
                     'model.bidirectional=True (each direction gets hidden_dim // 2).')
  return {'hidden_dim': hidden_dim, 'bidirectional': bidirectional}


def _build_rnn(cfg, src_vocab_size, tgt_vocab_size, dtype):
  decoder = _choice(cfg, 'decoder', DECODERS)
  reverse_source = bool(_get(cfg, 'reverse_source'))
  if reverse_source and decoder in ATTENTIVE:
    raise ValueError(f'model.reverse_source=True is for the decoders without attention, not '
                     f'{decoder!r}, whose alignment would be drawn over reversed words.')
  encoder_impl = _choice(cfg, 'encoder_impl', ENCODER_IMPLS)
  if encoder_impl == 'cudnn' and (cfg.cell != 'lstm' or dtype != jnp.float32):
    raise ValueError(f"model.encoder_impl='cudnn' runs jax.experimental.rnn's LSTM in float32 "
                     f"only, not model.cell={cfg.cell!r} with model.dtype={cfg.dtype!r}.")
  # the fields only Luong's decoder reads are taken as they are by the others, and not checked
  luong_only = {} if decoder == 'luong' else {field: _get(cfg, field) for field in LUONG_ONLY}
  if not luong_only and _get(cfg, 'local') not in LOCALS:
    raise ValueError(f"model.local={cfg.local!r} is not one of: 'm', 'p', '' (global).")
  return RNNSeq2Seq(src_vocab_size, tgt_vocab_size, dtype=dtype, **_read(
      RNNSeq2Seq, cfg, {'cell': tuple(CELLS), 'score': SCORES, 'local': LOCALS}, decoder=decoder,
      reverse_source=reverse_source, encoder_impl=encoder_impl, **_recurrent_width(cfg), **luong_only))


def _build_minrnn(cfg, src_vocab_size, tgt_vocab_size, dtype):
  attention = _choice(cfg, 'attention', MIN_ATTENTIONS)
  unread = {} if attention == 'luong' else {'score': _get(cfg, 'score')}  # without attention, no score
  return MinRNNSeq2Seq(src_vocab_size, tgt_vocab_size, dtype=dtype, **_read(
      MinRNNSeq2Seq, cfg, {'cell': MIN_CELLS, 'score': SCORES, 'scan': SCANS},
      attention=attention, **_recurrent_width(cfg), **unread))


def _build_transformer(cfg, src_vocab_size, tgt_vocab_size, dtype):
  d_model, num_heads = _positive(cfg, 'd_model'), _positive(cfg, 'num_heads')
  if d_model % num_heads:
    raise ValueError(f'model.d_model={d_model} is not divisible by model.num_heads={num_heads}.')
  positions = _choice(cfg, 'positions', POSITIONS)
  if positions == 'sinusoidal' and d_model % 2:
    raise ValueError(f"model.d_model={d_model} must be even for model.positions='sinusoidal'.")
  share_embeddings = bool(_get(cfg, 'share_embeddings'))
  if share_embeddings and src_vocab_size != tgt_vocab_size:
    raise ValueError(f'model.share_embeddings=True needs one vocabulary, but the source has '
                     f'{src_vocab_size} tokens and the target {tgt_vocab_size}; use a joint '
                     'vocabulary or set model.share_embeddings=False.')
  return Transformer(src_vocab_size, tgt_vocab_size, dtype=dtype, **_read(
      Transformer, cfg, {'norm': NORMS}, d_model=d_model, num_heads=num_heads, positions=positions,
      share_embeddings=share_embeddings))


def build(cfg: ml_collections.ConfigDict, src_vocab_size: int, tgt_vocab_size: int) -> nn.Module:
  """The model that the config's `model` section describes; ValueError for impossible values."""
  for name, size in (('source', src_vocab_size), ('target', tgt_vocab_size)):
    if size <= UNK_ID:
      raise ValueError(f'The {name} vocabulary has {size} tokens; it needs more than the '
                       f'{UNK_ID + 1} reserved ids (PAD, BOS, EOS, UNK).')
  family = _choice(cfg, 'family', FAMILIES)
  dtype = DTYPES[_choice(cfg, 'dtype', tuple(DTYPES))]
  if family == 'rnn':
    return _build_rnn(cfg, src_vocab_size, tgt_vocab_size, dtype)
  if family == 'minrnn':
    return _build_minrnn(cfg, src_vocab_size, tgt_vocab_size, dtype)
  return _build_transformer(cfg, src_vocab_size, tgt_vocab_size, dtype)


def attention_setting(cfg) -> str:
  """The config field that says whether a model attends, as `model.<field>=<value>`, for the
  messages of a model without attention (the RNNs' decoder, the minGRU's attention)."""
  field = 'decoder' if 'decoder' in cfg else 'attention'
  return f'model.{field}={cfg.get(field)!r}'


def attends(cfg) -> bool:
  """Whether the model a config's `model` section (a ConfigDict or a plain dict) describes has
  attention: every Transformer; an RNN whose decoder attends; a minRNN with attention."""
  family = cfg['family']
  if family == 'rnn':
    return cfg['decoder'] in ATTENTIVE
  if family == 'minrnn':
    return cfg['attention'] != 'none'
  return True


def init_params(model: nn.Module, seed: int):
  """Fresh parameters for `model`, drawn from `seed` (their shapes do not depend on lengths)."""
  dummy = jnp.ones((1, 8), jnp.int32)
  return jax.jit(model.init)(jax.random.PRNGKey(seed), dummy, dummy)['params']


def intervene(model: nn.Module, intervention: Intervention | None) -> nn.Module:
  """`model` with its cross-attention replaced as `intervention` says (None: as trained); the
  parameters are the same. A model without attention has nothing to replace: ValueError."""
  if intervention is None:
    return model.clone(intervention=None)
  if isinstance(model, RNNSeq2Seq) and model.decoder not in ATTENTIVE:
    raise ValueError(f'model.decoder={model.decoder!r} has no attention to intervene on')
  if isinstance(model, MinRNNSeq2Seq) and model.attention == 'none':
    raise ValueError("model.attention='none' has no attention to intervene on")
  if isinstance(model, (RNNSeq2Seq, MinRNNSeq2Seq)) and intervention.layers:
    raise ValueError('an RNN has one attention: intervention layers are for the Transformer')
  if isinstance(model, Transformer) and any(not 0 <= l < model.num_decoder_layers for l in intervention.layers):
    raise ValueError(f'intervention layers {intervention.layers}: the model has '
                     f'{model.num_decoder_layers} decoder layers')
  return model.clone(intervention=intervention)


def head_gates(model: nn.Module, off: dict | None = None) -> dict:
  """The 'gates' collection of `model` (`intervention.gates`): every head on but those in
  `off`. Only the Transformer has heads to gate: ValueError for another family."""
  if not isinstance(model, Transformer):
    raise ValueError('heads are switched off in a Transformer; this model is an RNN')
  return intervention_gates(model.num_encoder_layers, model.num_decoder_layers, model.num_heads, off)
