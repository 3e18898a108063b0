r"""The Transformer (Vaswani et al. 2017): attention without recurrence.

    attnjax train --config configs/transformer.py:size=small --workdir runs/transformer

Sizes (`attnjax.config.TRANSFORMER_SIZES`): `tiny` (tests and smoke runs), `small` (the CPU
default: trains on en_fr_synth:quick in minutes), `base` (Vaswani's base model: d_model 512,
8 heads, d_ff 2048, 6+6 layers) and `big` (d_model 1024, 16 heads, d_ff 4096, 6+6 layers);
base and big compute in bfloat16 with a 32,000-piece vocabulary.
"""

from attnjax.config import ConfigError, base, preset_options, transformer_model


def get_config(arg: str = "size=small"):
  size = preset_options(arg, {"size": "small"}, "configs/transformer.py")["size"]
  config = base()
  try:
    config.model = transformer_model(size)
  except ConfigError as err:
    raise ValueError(f"configs/transformer.py: {err}") from None
  config.train.learning_rate = 2e-3
  config.train.warmup_steps = 400
  if size in ("base", "big"):
    config.data.vocab_size = 32000
    config.train.learning_rate = 7e-4
    config.train.warmup_steps = 4000
  return config
