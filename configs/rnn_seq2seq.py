r"""The bottleneck: an RNN encoder–decoder without attention (Sutskever et al. 2014).

    attnjax train --config configs/rnn_seq2seq.py --workdir runs/seq2seq
    attnjax train --config configs/rnn_seq2seq.py:reverse=1 --workdir runs/seq2seq_reversed

The decoder starts from the encoder's final state and never sees the source again.
`reverse=1` feeds the source words last to first (Sutskever et al. 2014, sec. 3.3), which
puts the first source words next to the first target words.
"""

from attnjax.config import base, rnn_model


def get_config(arg: str = ""):
  options = dict(item.split("=", 1) for item in arg.split(",") if item)
  unknown = set(options) - {"reverse"}
  if unknown:
    raise ValueError(f"configs/rnn_seq2seq.py: unknown preset option(s) {sorted(unknown)}; use reverse=0|1")
  config = base()
  config.model = rnn_model(decoder="seq2seq")
  config.model.reverse_source = options.get("reverse", "0") not in ("0", "false", "False")
  return config
