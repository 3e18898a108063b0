"""Tiny configs for tests: compilation dominates, so models and data stay small."""


from attnjax import config as config_lib


def tiny_config(data_dir, family: str = "rnn", decoder: str = "luong", steps: int = 6):
  config = config_lib.base()
  config.data.name = "numbers:fr"
  config.data.data_dir = str(data_dir)
  config.data.vocab_size = 64
  config.data.max_src_len = 16
  config.data.max_tgt_len = 16
  config.data.batch_size = 8
  config.data.prefetch = 0
  if family == "rnn":
    config.model = config_lib.rnn_model(decoder=decoder)
    config.model.update(embed_dim=16, hidden_dim=16, dropout=0.1)
  else:
    config.model = config_lib.transformer_model("tiny")
    config.model.update(d_model=16, d_ff=32, max_len=64)
  config.train.update(num_steps=steps, learning_rate=1e-2, warmup_steps=2, log_every=2,
                      eval_every=3, eval_samples=8, checkpoint_every=3, keep_checkpoints=10)
  config.decode.max_len = 20
  return config
