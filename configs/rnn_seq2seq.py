r"""The bottleneck: an RNN encoder–decoder without attention (Sutskever et al. 2014; Cho et al. 2014).

    attnjax train --config configs/rnn_seq2seq.py --workdir runs/seq2seq

The decoder starts from the encoder's final state and never sees the source again.
"""

from attnjax.config import base, rnn_model


def get_config():
  config = base()
  config.model = rnn_model(decoder="seq2seq")
  return config
