r"""Luong global attention with a chosen score (Luong et al. 2015, eq. 8).

    attnjax train --config configs/rnn_luong.py:score=general --workdir runs/luong_general

Presets: `score=dot|general|concat|additive|scaled_dot`, and `feed=0` to turn input feeding
off, e.g. `configs/rnn_luong.py:score=dot,feed=0`.
"""

from attnjax.config import base, rnn_model


def get_config(arg: str = "score=general"):
  options = dict(item.split("=", 1) for item in arg.split(",") if item)
  unknown = set(options) - {"score", "feed"}
  if unknown:
    raise ValueError(f"configs/rnn_luong.py: unknown preset option(s) {sorted(unknown)}; use score= and feed=")
  config = base()
  config.model = rnn_model(decoder="luong", score=options.get("score", "general"))
  config.model.input_feeding = options.get("feed", "1") not in ("0", "false", "False")
  return config
