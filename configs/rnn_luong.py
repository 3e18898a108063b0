r"""Luong attention with a chosen score (Luong et al. 2015, eq. 8), global or local (sec. 3.2).

    attnjax train --config configs/rnn_luong.py:score=general --workdir runs/luong_general
    attnjax train --config configs/rnn_luong.py:score=general,local=p --workdir runs/luong_local_p

Presets: `score=dot|general|concat|additive|scaled_dot`; `feed=0` to turn input feeding off;
`local=m` (a window of 2D + 1 source positions centred on the target position) or `local=p`
(centred on a predicted position, with a Gaussian fall-off), D = model.local_window = 10;
e.g. `configs/rnn_luong.py:score=dot,feed=0`. About 7 minutes for 1,000 steps on 2 CPU cores.
"""

from attnjax.config import ConfigError, base, preset_options, rnn_model

LOCAL = {"": "", "global": "", "m": "m", "p": "p"}


def get_config(arg: str = "score=general"):
  options = preset_options(arg, {"score": "general", "feed": "1", "local": ""},
                           "configs/rnn_luong.py")
  if options["local"] not in LOCAL:
    raise ConfigError(f"configs/rnn_luong.py: local={options['local']!r} is not one of m, p, "
                     "global")
  config = base()
  config.model = rnn_model(decoder="luong", score=options["score"])
  config.model.input_feeding = options["feed"] not in ("0", "false", "False")
  config.model.local = LOCAL[options["local"]]
  return config
