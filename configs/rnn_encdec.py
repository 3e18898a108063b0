r"""RNNencdec: no attention, one fixed summary of the source at every decoder step
(Cho et al. 2014; the baseline of Bahdanau et al. 2015).

    attnjax train --config configs/rnn_encdec.py --workdir runs/encdec

The encoder's bridged final state c starts the decoder and enters every step with the
previous word's embedding, and the readout; unlike `configs/rnn_seq2seq.py`, the decoder
never has to carry c in its own state.
"""

from attnjax.config import base, rnn_model


def get_config():
  config = base()
  config.model = rnn_model(decoder="encdec")
  return config
