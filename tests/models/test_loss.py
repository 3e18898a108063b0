"""The training step's per-token terms: label-smoothed cross-entropy and the accuracy count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnjax.models import loss as loss_lib


def test_predicted_correctly_is_argmax_equals_label():
  logits = jax.random.normal(jax.random.key(0), (4, 6, 50))
  labels = jax.random.randint(jax.random.key(1), (4, 6), 0, 50)
  labels = labels.at[0].set(jnp.argmax(logits[0], -1))  # a row that is all correct
  expected = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  got = loss_lib.predicted_correctly(logits, labels)
  np.testing.assert_array_equal(got, expected)
  assert got[0].sum() == 6 and 0 < got.sum() < got.size


def test_predicted_correctly_counts_a_tie_with_the_max_as_correct():
  logits = jnp.array([[[1.0, 3.0, 3.0, 0.0]]])
  got = loss_lib.predicted_correctly(logits, jnp.array([[2]]))
  np.testing.assert_array_equal(got, [[1.0]])
  np.testing.assert_array_equal(loss_lib.predicted_correctly(logits, jnp.array([[0]])), [[0.0]])


def test_predicted_correctly_passes_no_gradient():
  logits = jax.random.normal(jax.random.key(2), (2, 3, 7))
  grad = jax.grad(lambda x: loss_lib.predicted_correctly(x, jnp.zeros((2, 3), jnp.int32)).sum())(logits)
  np.testing.assert_array_equal(grad, jnp.zeros_like(logits))


def test_cross_entropy_with_label_smoothing():
  logits = jax.random.normal(jax.random.key(3), (2, 3, 5))
  labels = jnp.array([[0, 1, 2], [3, 4, 0]])
  loss, nll = loss_lib.cross_entropy(logits, labels, 0.1)
  log_p = np.asarray(jax.nn.log_softmax(logits))
  want_nll = -np.take_along_axis(log_p, np.asarray(labels)[..., None], -1)[..., 0]
  np.testing.assert_allclose(nll, want_nll, rtol=1e-6)
  np.testing.assert_allclose(loss, 0.9 * want_nll - 0.1 * log_p.mean(-1), rtol=1e-6)


def _autodiff_cross_entropy(logits, labels, label_smoothing):
  """The definition, left to autodiff: what `loss_lib.cross_entropy`'s own gradient must match."""
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32))
  nll = -jnp.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
  return (1 - label_smoothing) * nll - label_smoothing * log_p.mean(-1), nll


def test_cross_entropy_gradient_matches_autodiff():
  logits = 3 * jax.random.normal(jax.random.key(4), (3, 4, 11))
  labels = jax.random.randint(jax.random.key(5), (3, 4), 0, 11).at[0, 0].set(10)
  w_loss, w_nll = jax.random.uniform(jax.random.key(6), (2, 3, 4))  # both outputs get a cotangent

  def objective(fn, eps):
    return jax.jit(jax.grad(lambda z: jnp.sum(fn(z, labels, eps)[0] * w_loss)
                            + jnp.sum(fn(z, labels, eps)[1] * w_nll)))

  for eps in (0.0, 0.1):
    got = objective(loss_lib.cross_entropy, eps)(logits)
    want = objective(_autodiff_cross_entropy, eps)(logits)
    np.testing.assert_allclose(got, want, atol=1e-6)
    for a, b in zip(loss_lib.cross_entropy(logits, labels, eps), _autodiff_cross_entropy(logits, labels, eps)):
      np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_cross_entropy_gradient_keeps_the_logits_dtype():
  logits = jax.random.normal(jax.random.key(7), (2, 3, 9), jnp.bfloat16)
  labels = jnp.array([[0, 1, 8], [2, 2, 5]])
  grad = jax.grad(lambda z: loss_lib.cross_entropy(z, labels, 0.1)[0].sum())(logits)
  want = jax.grad(lambda z: _autodiff_cross_entropy(z, labels, 0.1)[0].sum())(logits)
  assert grad.dtype == jnp.bfloat16
  np.testing.assert_allclose(grad.astype(np.float32), want.astype(np.float32), atol=1e-2)


@pytest.mark.parametrize("name", [
    "luong-feeding-general-bilstm", "transformer-post-learned-shared",
    *(pytest.param(n, marks=pytest.mark.slow) for n in (
        "bahdanau-bilstm-2layers", "seq2seq-bigru-2layers", "encdec-bilstm", "luong-dot-bilstm-odd",
        "transformer-pre"))])
@pytest.mark.parametrize("chunk", [4, pytest.param(7, marks=pytest.mark.slow)])
def test_the_chunked_output_layer_gives_the_same_loss_and_gradients(name, chunk):
  """`train.loss_chunk`: the output layer a few tokens at a time (here 4 or 7 of 15, the last
  chunk padded) gives the loss terms and the gradients of the whole batch at once, for every
  RNN readout and the Transformer's separate and tied output layers."""
  import ml_collections
  from attnjax.models import build
  from tests.helpers import random_variables
  from tests.models.test_contract import CONFIGS, SRC, TGT_IN, TGT_OUT, vocab_sizes
  cfg = ml_collections.ConfigDict(CONFIGS[name])
  model = build(cfg, *vocab_sizes(cfg))
  params = random_variables(model, SRC, TGT_IN)["params"]
  batch = {"src": SRC, "tgt_in": TGT_IN, "tgt_out": TGT_OUT}

  def sums(params, chunk):
    return loss_lib.loss_sums(model, params, batch, None, 0.1, train=False, chunk=chunk)

  whole, chunked = sums(params, 0), sums(params, chunk)
  for key in ("loss", "nll", "correct", "tokens"):
    np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-5, err_msg=key)
  grad = lambda c: jax.grad(lambda p: sums(p, c)["loss"])(params)
  # float32 sums in another order: a tied embedding gathers its gradient from both ends
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), grad(chunk), grad(0))
