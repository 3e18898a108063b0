r"""Luong global attention with a chosen score (Luong et al. 2015, eq. 8).

    attnjax train --config configs/rnn_luong.py:score=general --workdir runs/luong_general

Presets: `score=dot|general|concat|additive|scaled_dot`, and `feed=0` to turn input feeding
off, e.g. `configs/rnn_luong.py:score=dot,feed=0`.
"""

from attnjax.config import base, preset_options, rnn_model


def get_config(arg: str = "score=general"):
  options = preset_options(arg, {"score": "general", "feed": "1"}, "configs/rnn_luong.py")
  config = base()
  config.model = rnn_model(decoder="luong", score=options["score"])
  config.model.input_feeding = options["feed"] not in ("0", "false", "False")
  return config
