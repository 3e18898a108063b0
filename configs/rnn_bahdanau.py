r"""RNNsearch: additive attention on the previous decoder state (Bahdanau et al. 2015).

    attnjax train --config configs/rnn_bahdanau.py --workdir runs/bahdanau
"""

from attnjax.config import base, rnn_model


def get_config():
  config = base()
  config.model = rnn_model(decoder="bahdanau", score="additive")
  return config
