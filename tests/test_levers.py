"""The MFU ablation's levers leave training what it was: the fused bias + dropout + residual
computes the unfused function, and dropout's key generators (train.prng_impl) are seeded and
give dropout of the same distribution. (The chunked loss: tests/models/test_loss.py and
tests/test_bench.py; the XLA flags: tests/test_gpu_script.py.)"""

import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from attnjax import models, tokens
from attnjax.speed import bench
from attnjax import config as config_lib
from attnjax.models import layers, loss
from attnjax.train import state as state_lib
from attnjax.train import steps

VOCAB = 40


def _transformer(norm="pre", dropout=0.3, fused=False):
  cfg = config_lib.transformer_model("tiny")
  cfg.update(norm=norm, dropout=dropout, attention_dropout=0.0)
  return models.build(cfg, VOCAB, VOCAB).clone(fused_residual=fused)


def _batch(seed=0):
  return {k: jnp.asarray(v) for k, v in tokens.random_batch(3, 7, 6, VOCAB, seed=seed).items()}


# ---------------------------------------------------------------- the fused residual

def test_dense_apart_is_the_dense_layer_with_its_bias_handed_back():
  x = jax.random.normal(jax.random.key(0), (2, 3, 4, 5))
  for axis, plain in ((-1, layers.Dense(6)), ((-2, -1), layers.DenseGeneral(6, axis=(-2, -1)))):
    apart = layers.DenseApart(6, axis=axis)
    p, q = plain.init(jax.random.key(1), x), apart.init(jax.random.key(1), x)
    assert jax.tree.map(lambda a, b: bool((a == b).all()), p, q) == jax.tree.map(lambda _: True, p)
    y, bias = apart.apply(q, x)
    np.testing.assert_allclose(y + bias, plain.apply(p, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_the_fused_residual_computes_the_unfused_loss_and_gradients(norm):
  """The same parameters (names, shapes, values from one seed) and, with dropout off and on
  (the same rng, so the same masks), the same loss and gradients up to rounding."""
  plain, fused = _transformer(norm), _transformer(norm, fused=True)
  params = models.init_params(plain, seed=0)
  fused_params = models.init_params(fused, seed=0)
  assert jax.tree.structure(params) == jax.tree.structure(fused_params)
  assert all(bool((a == b).all()) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(fused_params)))
  batch = _batch()
  for train in (False, True):
    def loss_and_grads(model):
      fn = lambda p: loss.loss_sums(model, p, batch, jax.random.key(3), 0.1, train=train)["loss"]
      return jax.value_and_grad(fn)(params)
    (l0, g0), (l1, g1) = loss_and_grads(plain), loss_and_grads(fused)
    assert float(l1) == pytest.approx(float(l0), rel=1e-6)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
      np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
  # dropout on draws masks: another rng, another loss (so the equality above is not vacuous)
  other = loss.loss_sums(fused, params, batch, jax.random.key(4), 0.1, train=True)["loss"]
  assert float(other) != pytest.approx(float(l0), rel=1e-6)


def test_the_fused_residual_decodes_as_the_unfused():
  plain, fused = _transformer(dropout=0.3), _transformer(dropout=0.3, fused=True)
  params = models.init_params(plain, seed=0)
  src = _batch()["src"]
  def first_logits(model):
    state = model.apply({"params": params}, src, 5, method="init_decode_state")
    (logits, _), _ = model.apply({"params": params}, jnp.full((3,), tokens.BOS_ID), state,
                                 method="decode_step", mutable=["intermediates"])
    return logits
  np.testing.assert_allclose(first_logits(fused), first_logits(plain), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- dropout's key generators

TRAIN = ml_collections.ConfigDict(dict(optimizer="adam", learning_rate=1e-2, weight_decay=0.0,
                                       schedule="constant", warmup_steps=0, num_steps=100,
                                       clip_norm=1.0))


@functools.cache
def _step(dropout):
  model = _transformer(dropout=dropout)
  return model, jax.jit(functools.partial(steps.train_step, model=model, label_smoothing=0.1))


def _losses(impl, seed, count, dropout=0.3):
  """Per-step mean token losses of `count` steps on one batch from one initialisation: only
  dropout's key (seed, generator) differs between calls."""
  model, step = _step(dropout)
  state = state_lib.TrainState.create(models.init_params(model, seed=0), state_lib.make_optimizer(TRAIN))
  batch, key, out = _batch(), steps.rng_key(seed, impl), []
  for _ in range(count):
    state, metrics = step(state, batch, key)
    out.append(float(metrics["loss"] / metrics["tokens"]))
  return out


@pytest.mark.slow
@pytest.mark.parametrize("impl", steps.PRNG_IMPLS)
def test_every_generator_is_seeded(impl):
  assert _losses(impl, 0, 2) == _losses(impl, 0, 2)
  assert _losses(impl, 1, 2) != _losses(impl, 0, 2)


@pytest.mark.slow
def test_rbg_keys_hash_to_threefrys_masks():
  """rbg's key is two threefry keys of the seed, and dropout hashes a key's first and last
  words: the same masks, so rbg changes only what deriving the keys costs."""
  assert _losses("rbg", 5, 2) == _losses("threefry2x32", 5, 2)


class _ThreeDropouts(nn.Module):
  """Two calls of one dropout layer and one of another, as the Transformer's layers make them."""

  @nn.compact
  def __call__(self, x):
    first = layers.Dropout(0.3, deterministic=False)
    return jnp.stack([first(x), first(x), layers.Dropout(0.3, deterministic=False)(x)])


@pytest.mark.parametrize("impl", steps.PRNG_IMPLS)
def test_dropout_keeps_the_rate_and_its_masks_are_independent(impl):
  """Masks from Flax's per-layer keys, 4 steps x 3 calls of 65,536 units: each keeps 70% of its
  units and any two agree on 0.7^2 + 0.3^2 = 58% of them, within 5 standard errors."""
  x = jnp.ones((256, 256))
  key = steps.rng_key(0, impl)
  masks = jnp.concatenate([_ThreeDropouts().apply({}, x, rngs={"dropout": jax.random.fold_in(key, s)}) != 0
                           for s in range(4)]).reshape(12, -1)
  n = masks.shape[1]
  kept = np.asarray(masks.mean(axis=1))
  assert np.all(np.abs(kept - 0.7) < 5 * np.sqrt(0.21 / n)), kept
  agree = np.asarray([(masks[i] == masks[j]).mean() for i in range(12) for j in range(i + 1, 12)])
  assert np.all(np.abs(agree - 0.58) < 5 * np.sqrt(0.58 * 0.42 / n)), agree


@pytest.mark.slow
def test_a_tiny_model_trains_alike_under_every_generator():
  """The loss after 20 steps over 6 seeds: each generator's mean within Welch's |t| < 4.5 of
  threefry's, while dropout switched off lands far outside that spread (the test can see a
  dropout that does nothing)."""
  final = {impl: np.array([np.mean(_losses(impl, seed, 20)[-5:]) for seed in range(6)])
           for impl in steps.PRNG_IMPLS}
  ref = final["threefry2x32"]
  for impl, values in final.items():
    se = np.sqrt(values.var(ddof=1) / len(values) + ref.var(ddof=1) / len(ref))
    assert abs(values.mean() - ref.mean()) <= 4.5 * se + 1e-6, (impl, values, ref)
  no_dropout = np.mean(_losses("threefry2x32", 0, 20, dropout=0.0)[-5:])
  assert abs(no_dropout - ref.mean()) > 10 * ref.std(ddof=1) / np.sqrt(len(ref)), (no_dropout, ref)


def test_a_generator_that_jax_lacks_is_refused_in_one_line():
  config = config_lib.base()
  config.model = config_lib.transformer_model("tiny")
  config.train.prng_impl = "philox"
  with pytest.raises(config_lib.ConfigError, match=r"^train.prng_impl='philox' is not one of threefry2x32, rbg, unsafe_rbg$"):
    config_lib.validate(config)
  config.train.prng_impl = "unsafe_rbg"
  config_lib.validate(config)


@pytest.mark.slow
def test_training_takes_its_generator_from_the_config(data_dir, tmp_path):
  """train.prng_impl reaches the loop: unsafe_rbg trains with other masks than threefry."""
  from attnjax.train.loop import train_and_evaluate
  from tests.helpers import losses, tiny_config
  logged = {}
  for impl in ("threefry2x32", "unsafe_rbg"):
    config = tiny_config(data_dir, family="transformer", steps=4)
    config.model.dropout = 0.3
    config.train.update(prng_impl=impl, log_every=2, eval_every=4, eval_samples=0, checkpoint_every=4)
    train_and_evaluate(config, tmp_path / impl, progress=False)
    logged[impl] = losses(tmp_path / impl)
  assert logged["threefry2x32"][2] != logged["unsafe_rbg"][2]


# ---------------------------------------------------------------- bench's options

TINY = ["--vocab", "32", "--batch", "2", "--src-len", "5", "--tgt-len", "4", "--d-model", "8",
        "--heads", "2", "--ff", "16", "--layers", "1", "--warmup", "1", "--steps", "1"]


@pytest.mark.slow
def test_bench_takes_the_levers_and_names_them(capsys):
  assert bench.main(["--model", "transformer", "--prng-impl", "unsafe_rbg", "--fused-residual"] + TINY) == 0
  result = json.loads(capsys.readouterr().out)
  assert (result["prng_impl"], result["fused_residual"]) == ("unsafe_rbg", True)
  for flags, message in ((["--model", "rnn_attention", "--fused-residual"], "is for the Transformer"),
                         (["--model", "transformer", "--task", "decode", "--prng-impl", "rbg"], "--task train only")):
    with pytest.raises(SystemExit):
      bench.parse_args(flags + TINY)
    assert message in capsys.readouterr().err


def test_the_fused_residual_is_a_config_field_a_training_can_set(tmp_path):
  import json
  from attnjax import models, workdir
  from attnjax.config import base, transformer_model
  cfg = transformer_model("tiny")
  assert models.build(cfg, 32, 32).fused_residual is False
  cfg.fused_residual = True
  assert models.build(cfg, 32, 32).fused_residual is True
  config = base()  # a workdir's config written before the field reads as trained without it
  config.model = transformer_model("tiny")
  del config.model.fused_residual
  (tmp_path / "config.json").write_text(config.to_json())
  assert "fused_residual" not in json.loads((tmp_path / "config.json").read_text())["model"]
  assert models.build(workdir.load_config(tmp_path).model, 32, 32).fused_residual is False
