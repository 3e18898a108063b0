"""Configs: the shared defaults and model sections, and the checks made before anything is
built or compiled (the copy a workdir keeps is `attnjax/workdir.py`'s).

Unknown keys and wrong types are refused by ml_collections itself when a flag overrides a
field; here we refuse impossible values, each with a one-line message naming the field.
"""

import ml_collections

from attnjax.errors import Error


class ConfigError(Error, ValueError):
  """A config value that cannot work; the message names the field and what would."""


def preset_options(arg: str, defaults: dict, where: str) -> dict:
  """A config file's `:arg` preset, `key=value[,key=value]`, over `defaults` (strings); an
  unknown key or an item without `=` is a ConfigError naming the file and what it takes."""
  options = dict(defaults)
  takes = ", ".join(f"{key}=" for key in defaults)
  for item in filter(None, arg.split(",")):
    key, eq, value = item.partition("=")
    if not eq:
      raise ConfigError(f"{where}: preset option {item!r} has no value; it takes {takes}")
    if key not in defaults:
      raise ConfigError(f"{where}: unknown preset option(s) {[key]}; it takes {takes}")
    options[key] = value
  return options


def base() -> ml_collections.ConfigDict:
  """Every section with the defaults shared by all configs; a config file sets `model`."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  # Data: the corpus, the subword vocabulary and the batches.
  config.data = ml_collections.ConfigDict()
  config.data.name = "en_fr_synth:quick"   # or numbers:fr, files, a TFDS name (wmt14_translate/de-en)
  config.data.data_dir = ""                # "" = $ATTNJAX_DATA_DIR or ~/.cache/attnjax
  config.data.files_dir = ""               # for name="files": train/valid/test.{src,tgt}
  config.data.src_lang = "en"
  config.data.tgt_lang = "fr"
  config.data.tokenizer = "unigram"        # unigram | bpe
  config.data.vocab_size = 2000
  config.data.shared_vocab = True
  config.data.max_src_len = 64             # subword tokens, EOS included
  config.data.max_tgt_len = 64
  config.data.batch_size = 64              # sentence pairs per global batch
  config.data.tokens_per_batch = 0         # > 0: token-based batches instead
  config.data.pack = False                 # Transformer: several pairs to a row, kept apart
  config.data.prefetch = 2

  # Training.
  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 1500
  config.train.optimizer = "adam"          # adam | adamw
  config.train.learning_rate = 3e-3
  config.train.weight_decay = 0.0
  config.train.schedule = "rsqrt"          # rsqrt | cosine | constant (each after warmup)
  config.train.warmup_steps = 200
  config.train.clip_norm = 1.0
  config.train.label_smoothing = 0.1
  config.train.loss_chunk = 0              # target tokens per output-layer chunk; 0 = all at once
  config.train.prng_impl = "threefry2x32"  # dropout's key generator: threefry2x32 | rbg | unsafe_rbg
  config.train.grad_accum_steps = 1
  config.train.log_every = 50
  config.train.eval_every = 500
  config.train.eval_samples = 200          # validation sentences decoded for BLEU
  config.train.checkpoint_every = 500
  config.train.keep_checkpoints = 2
  config.train.early_stopping_patience = 0  # evaluations without BLEU gain; 0 = off
  config.train.nan_policy = "stop"          # stop | skip

  # Decoding (eval, translate, align).
  config.decode = ml_collections.ConfigDict()
  config.decode.beam_size = 1
  config.decode.length_penalty = 0.6        # GNMT alpha
  config.decode.max_len = 80

  # Devices.
  config.parallel = ml_collections.ConfigDict()
  config.parallel.strategy = "mesh"         # mesh | pmap
  config.parallel.fsdp = 1                  # size of the mesh's fsdp axis
  config.parallel.num_devices = 0           # 0 = every device; N = the first N/processes of each process
  return config


def rnn_model(decoder: str = "luong", score: str = "general") -> ml_collections.ConfigDict:
  """The RNN family's model section (see attnjax/models/rnn.py)."""
  model = ml_collections.ConfigDict()
  model.family = "rnn"
  model.dtype = "float32"
  model.cell = "lstm"
  model.embed_dim = 128
  model.hidden_dim = 256
  model.num_layers = 1
  model.bidirectional = True
  model.dropout = 0.1
  model.decoder = decoder        # seq2seq | encdec (no attention) | bahdanau | luong
  model.score = score            # dot | general | concat | additive | scaled_dot (luong)
  model.input_feeding = True     # luong
  model.local = ""               # luong: "" (global) | m (local-m) | p (local-p), Luong sec. 3.2
  model.local_window = 10        # luong, local: D, the window [p_t - D, p_t + D]
  model.reverse_source = False   # seq2seq, encdec: read the source words last to first
  model.encoder_impl = "scan"    # scan | cudnn (jax.experimental.rnn: cuDNN's LSTM on a GPU)
  return model


def min_rnn_model(cell: str = "gru", attention: str = "luong") -> ml_collections.ConfigDict:
  """The minGRU / minLSTM family's model section (see attnjax/models/minrnn.py)."""
  model = ml_collections.ConfigDict()
  model.family = "minrnn"
  model.dtype = "float32"
  model.cell = cell              # gru (minGRU) | lstm (minLSTM), Feng et al. 2024
  model.embed_dim = 128          # the residual stream's width D
  model.hidden_dim = 256         # the state's size H per layer (both directions together)
  model.num_layers = 2           # encoder and decoder each
  model.bidirectional = True
  model.dropout = 0.1
  model.attention = attention    # luong (general score, no input feeding) | none (the bottleneck)
  model.score = "general"        # luong: dot | general | concat | additive | scaled_dot
  model.log_space = False        # walk log h (Feng et al.'s log-space form) instead of h
  model.scan = "auto"            # associative | sequential | auto (sequential on a CPU only)
  return model


# Model fields added after workdirs were trained, with the value that reproduces those
# workdirs: a saved config without one reads as if it had it (workdir.load_config).
ADDED_MODEL_FIELDS = {"rnn": {"reverse_source": False, "encoder_impl": "scan", "local": "",
                              "local_window": 10},
                      "transformer": {"fused_residual": False}}


TRANSFORMER_SIZES = {  # d_model, heads, d_ff, layers (encoder = decoder)
    "tiny": (32, 2, 64, 1),          # tests and smoke runs
    "small": (128, 4, 512, 2),       # the CPU default
    "base": (512, 8, 2048, 6),       # Vaswani et al. 2017, Table 3
    "big": (1024, 16, 4096, 6),
}


def transformer_model(size: str = "small") -> ml_collections.ConfigDict:
  """The Transformer's model section at one of TRANSFORMER_SIZES (see attnjax/models/transformer.py)."""
  if size not in TRANSFORMER_SIZES:
    raise ConfigError(f"Transformer size={size!r} is not one of {', '.join(TRANSFORMER_SIZES)}")
  d_model, heads, d_ff, layers = TRANSFORMER_SIZES[size]
  model = ml_collections.ConfigDict()
  model.family = "transformer"
  model.dtype = "bfloat16" if size in ("base", "big") else "float32"
  model.d_model = d_model
  model.num_heads = heads
  model.d_ff = d_ff
  model.num_encoder_layers = layers
  model.num_decoder_layers = layers
  model.dropout = 0.1
  model.attention_dropout = 0.0
  model.positions = "sinusoidal"   # sinusoidal | learned
  model.norm = "pre"               # pre (LayerNorm before each sublayer) | post (as in the paper)
  model.share_embeddings = True    # one matrix for source, target and output (shared vocab)
  model.max_len = 256
  model.fused_residual = False     # one elementwise pass of bias, dropout and residual per sublayer
  return model


def _check(ok: bool, message: str) -> None:
  if not ok:
    raise ConfigError(message)


def _one_of(config, path, choices):
  section, key = path.split(".")
  value = config[section][key]
  _check(value in choices, f"{path}={value!r} is not one of {', '.join(map(str, choices))}")


def validate(config: ml_collections.ConfigDict) -> None:
  """Raise ConfigError on the first impossible value."""
  for section in ("data", "model", "train", "decode", "parallel"):
    _check(section in config, f"the config has no '{section}' section; start from configs/default.py")
  d, t, dec, par = config.data, config.train, config.decode, config.parallel
  _check(d.batch_size > 0, f"data.batch_size={d.batch_size} must be positive")
  _check(d.tokens_per_batch >= 0, f"data.tokens_per_batch={d.tokens_per_batch} must be 0 (off) or positive")
  _check(d.vocab_size >= 16, f"data.vocab_size={d.vocab_size} is too small; use at least 16")
  _check(d.max_src_len >= 2 and d.max_tgt_len >= 2,
         f"data.max_src_len={d.max_src_len} and data.max_tgt_len={d.max_tgt_len} must be at least 2")
  _one_of(config, "data.tokenizer", ("unigram", "bpe"))
  _check(not d.pack or config.model.get("family") == "transformer",
         f"data.pack=True packs several pairs into a row, which only the Transformer keeps apart "
         f"(model.family={config.model.get('family')!r}); leave it False")
  _check(t.num_steps > 0, f"train.num_steps={t.num_steps} must be positive")
  _check(t.learning_rate > 0, f"train.learning_rate={t.learning_rate} must be positive")
  _check(t.warmup_steps >= 0, f"train.warmup_steps={t.warmup_steps} must be 0 or positive")
  _one_of(config, "train.schedule", ("rsqrt", "cosine", "constant"))
  _one_of(config, "train.optimizer", ("adam", "adamw"))
  _one_of(config, "train.nan_policy", ("stop", "skip"))
  _check(t.clip_norm >= 0, f"train.clip_norm={t.clip_norm} must be 0 (off) or positive")
  _check(0 <= t.label_smoothing < 1, f"train.label_smoothing={t.label_smoothing} must be in [0, 1)")
  _check(t.loss_chunk >= 0, f"train.loss_chunk={t.loss_chunk} must be 0 (off) or positive")
  from attnjax.train.steps import PRNG_IMPLS
  _one_of(config, "train.prng_impl", PRNG_IMPLS)
  _check(t.grad_accum_steps >= 1, f"train.grad_accum_steps={t.grad_accum_steps} must be at least 1")
  _check(d.batch_size % t.grad_accum_steps == 0,
         f"data.batch_size={d.batch_size} is not divisible by train.grad_accum_steps={t.grad_accum_steps}")
  for key in ("log_every", "eval_every", "checkpoint_every", "keep_checkpoints"):
    _check(t[key] > 0, f"train.{key}={t[key]} must be positive")
  _check(t.eval_samples >= 0, f"train.eval_samples={t.eval_samples} must be 0 or positive")
  _check(t.early_stopping_patience >= 0, f"train.early_stopping_patience={t.early_stopping_patience} must be 0 (off) or positive")
  _check(dec.beam_size >= 1, f"decode.beam_size={dec.beam_size} must be at least 1")
  _check(dec.max_len >= 1, f"decode.max_len={dec.max_len} must be at least 1")
  _check(dec.length_penalty >= 0, f"decode.length_penalty={dec.length_penalty} must be 0 or positive")
  _one_of(config, "parallel.strategy", ("mesh", "pmap"))
  _check(par.fsdp >= 1, f"parallel.fsdp={par.fsdp} must be at least 1")
  _check(par.num_devices >= 0, f"parallel.num_devices={par.num_devices} must be 0 (all) or positive")
  _one_of(config, "model.dtype", ("float32", "bfloat16"))
  from attnjax import models  # the models check their own fields (sizes, heads, scores)
  try:
    models.build(config.model, d.vocab_size, d.vocab_size)
  except ValueError as err:
    raise ConfigError(str(err)) from None
