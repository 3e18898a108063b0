r"""The main job: an RNN with Luong attention on the built-in English→French corpus.

    attnjax train --config configs/default.py --workdir runs/default

A bidirectional LSTM encoder and an LSTM decoder with Luong global attention (the
`general` score, input feeding), trained on `en_fr_synth:quick`. The shared defaults of
every section are in `attnjax.config.base`, the model's in `attnjax.config.rnn_model`.
"""

from attnjax.config import base, rnn_model


def get_config():
  config = base()
  config.model = rnn_model()
  return config
