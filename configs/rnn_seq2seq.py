r"""The bottleneck: an RNN encoder–decoder without attention (Sutskever et al. 2014).

    attnjax train --config configs/rnn_seq2seq.py --workdir runs/seq2seq
    attnjax train --config configs/rnn_seq2seq.py:reverse=1 --workdir runs/seq2seq_reversed

The decoder starts from the encoder's final state and never sees the source again.
`reverse=1` feeds the source words last to first (Sutskever et al. 2014, sec. 3.3), which
puts the first source words next to the first target words.
"""

from attnjax.config import base, preset_options, rnn_model


def get_config(arg: str = ""):
  options = preset_options(arg, {"reverse": "0"}, "configs/rnn_seq2seq.py")
  config = base()
  config.model = rnn_model(decoder="seq2seq")
  config.model.reverse_source = options["reverse"] not in ("0", "false", "False")
  return config
