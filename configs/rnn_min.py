r"""minGRU / minLSTM: an RNN that trains in parallel over time (Feng et al. 2024).

    attnjax train --config configs/rnn_min.py:cell=gru,attention=luong --workdir runs/mingru_luong
    attnjax train --config configs/rnn_min.py:cell=gru,attention=none --workdir runs/mingru

Gates that read only the input make the recurrence linear in the state, so every layer of the
encoder and, in training, of the decoder is one scan over time (attnjax/models/minrnn.py).
Presets: `cell=gru|lstm` (minGRU, minLSTM); `attention=luong` (the general score on the
decoder's output, without input feeding) or `attention=none` (the bottleneck: the source
reaches the decoder only as the encoder's final states). Two layers of state H = 256 on a
stream of D = 128, a bidirectional encoder, on `en_fr_synth:quick`. Timed beside
`configs/rnn_luong.py` on 2 CPU cores (batch 64, 24-token pairs), a training step of
minGRU-Luong took 0.6 times the LSTM-Luong's, minGRU without attention 0.8 times, minLSTM-Luong
1.4 times: about 5 minutes for 1,000 steps of minGRU-Luong, where the LSTM takes 7.
"""

from attnjax.config import ConfigError, base, min_rnn_model, preset_options

CELLS = ("gru", "lstm")
ATTENTIONS = ("luong", "none")


def get_config(arg: str = "cell=gru,attention=luong"):
  options = preset_options(arg, {"cell": "gru", "attention": "luong"}, "configs/rnn_min.py")
  for key, choices in (("cell", CELLS), ("attention", ATTENTIONS)):
    if options[key] not in choices:
      raise ConfigError(f"configs/rnn_min.py: {key}={options[key]!r} is not one of {', '.join(choices)}")
  config = base()
  config.model = min_rnn_model(options["cell"], options["attention"])
  return config
