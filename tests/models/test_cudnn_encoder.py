"""model.encoder_impl='cudnn': jax.experimental.rnn's LSTM computes what the scan encoder does.

On a CPU the 'cudnn' path runs jax's reference LSTM (`lstm_ref`) on cuDNN's weight layout, so
these tests check the layout conversion and the carry and padding conventions; on a GPU the
same weights go to cuDNN's kernel.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnjax import config as config_lib
from attnjax.models.rnn import Encoder, scan_to_cudnn

pytestmark = pytest.mark.slow  # `make check` runs these; `make test` leaves them out

SRC = jnp.array([[5, 6, 7, 8, 2, 0], [9, 4, 2, 0, 0, 0]], jnp.int32)  # padded, EOS = 2


@pytest.mark.parametrize("layers, bidirectional", [(2, True), (1, False)])
def test_cudnn_encoder_equals_the_scan_encoder(layers, bidirectional):
  make = lambda impl: Encoder(20, "lstm", 8, 6, layers, bidirectional, 0.0, impl=impl)
  scan, cudnn = make("scan"), make("cudnn")
  params = scan.init(jax.random.key(0), SRC, False)["params"]
  converted = scan_to_cudnn(params, layers, bidirectional)
  assert jax.tree.map(jnp.shape, converted) == jax.tree.map(
      jnp.shape, cudnn.init(jax.random.key(1), SRC, False)["params"])
  h_scan, finals_scan, mask = scan.apply({"params": params}, SRC, False)
  h_cudnn, finals_cudnn, _ = cudnn.apply({"params": converted}, SRC, False)
  np.testing.assert_allclose(h_cudnn, h_scan, atol=1e-5)
  assert not np.any(np.asarray(h_cudnn)[~np.asarray(mask)])  # padding stays zero
  for a, b in zip(jax.tree.leaves(finals_cudnn), jax.tree.leaves(finals_scan)):
    np.testing.assert_allclose(a, b, atol=1e-5)
  assert jax.tree.structure(finals_cudnn) == jax.tree.structure(finals_scan)

  def loss(embed, module, p):
    h, finals, _ = module.apply({"params": {**p, "embed": {"embedding": embed}}}, SRC, False)
    return jnp.sum(h ** 2) + sum(jnp.sum(x) for x in jax.tree.leaves(finals))

  embed = params["embed"]["embedding"]
  np.testing.assert_allclose(jax.grad(loss)(embed, cudnn, converted),
                             jax.grad(loss)(embed, scan, params), atol=1e-5)


def test_cudnn_encoder_is_an_lstm_in_float32_only():
  config = config_lib.base()
  config.model = config_lib.rnn_model()
  config.model.encoder_impl = "cudnn"
  config_lib.validate(config)  # the default LSTM in float32 is fine
  config.model.cell = "gru"
  with pytest.raises(config_lib.ConfigError, match="encoder_impl='cudnn' runs jax.experimental.rnn's LSTM"):
    config_lib.validate(config)
  config.model.update(cell="lstm", encoder_impl="fused")
  with pytest.raises(config_lib.ConfigError, match="encoder_impl='fused' is not one of: scan, cudnn"):
    config_lib.validate(config)
