r"""The Transformer (Vaswani et al. 2017): attention without recurrence.

    attnjax train --config configs/transformer.py:size=small --workdir runs/transformer

Sizes: `tiny` (tests and smoke runs), `small` (the CPU default: trains on en_fr_synth:quick
in minutes), `base` (Vaswani's base model: d_model 512, 8 heads, d_ff 2048, 6+6 layers).
"""

import ml_collections

from attnjax.config import base

SIZES = {  # d_model, heads, d_ff, layers (encoder = decoder)
    "tiny": (32, 2, 64, 1),
    "small": (128, 4, 512, 2),
    "base": (512, 8, 2048, 6),
}


def get_config(arg: str = "size=small"):
  size = dict(item.split("=", 1) for item in arg.split(",") if item).get("size", "small")
  if size not in SIZES:
    raise ValueError(f"configs/transformer.py: size={size!r} is not one of {', '.join(SIZES)}")
  d_model, heads, d_ff, layers = SIZES[size]
  config = base()
  config.model = ml_collections.ConfigDict()
  config.model.family = "transformer"
  config.model.dtype = "float32"
  config.model.d_model = d_model
  config.model.num_heads = heads
  config.model.d_ff = d_ff
  config.model.num_encoder_layers = layers
  config.model.num_decoder_layers = layers
  config.model.dropout = 0.1
  config.model.attention_dropout = 0.0
  config.model.positions = "sinusoidal"   # sinusoidal | learned
  config.model.norm = "pre"               # pre (LayerNorm before each sublayer) | post (as in the paper)
  config.model.share_embeddings = True    # one matrix for source, target and output (shared vocab)
  config.model.max_len = 256
  config.train.learning_rate = 2e-3
  config.train.warmup_steps = 400
  if size == "base":
    config.data.vocab_size = 32000
    config.model.dtype = "bfloat16"
    config.train.learning_rate = 7e-4
    config.train.warmup_steps = 4000
  return config
