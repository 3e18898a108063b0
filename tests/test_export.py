"""The accelerator path proven without an accelerator: every family's training step under the
mesh strategy, its teacher-forced forward pass, its decode step and its greedy decoder lower
for CUDA and TPU through `jax.export`, so a construct that lowers only on the CPU fails here.

Not covered, because they cannot lower without cuDNN present: the fused attention's
`implementation="cudnn"` (the models pick it only when the running backend is a GPU, so on
this CPU the export takes the XLA composition) and `model.encoder_impl="cudnn"`
(jax.experimental.rnn's GPU kernel).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

from attnjax import config as config_lib
from attnjax.infer import decode as decode_lib
from attnjax import models, parallel
from attnjax.models.rnn import DECODERS
from attnjax.tokens import random_batch
from attnjax.train import steps
from attnjax.train.state import init_state

pytestmark = pytest.mark.slow  # `make check` runs these; `make test` leaves them out

PLATFORMS = ("cuda", "tpu")
VOCAB = 32
FAMILIES = [f"rnn_{d}" for d in DECODERS] + ["transformer"]


def _model_config(family: str):
  if family == "transformer":
    cfg = config_lib.transformer_model("tiny")
    cfg.update(d_model=16, d_ff=32, max_len=32)
    return cfg
  cfg = config_lib.rnn_model(decoder=family.removeprefix("rnn_"))
  cfg.update(embed_dim=16, hidden_dim=16)
  return cfg


def _lowers(fn, *args):
  exported = export.export(fn, platforms=PLATFORMS)(*args)
  assert tuple(exported.platforms) == PLATFORMS
  assert "stablehlo" in exported.mlir_module()
  return exported


@pytest.mark.parametrize("family", FAMILIES)
def test_training_step_under_the_mesh_lowers_for_accelerators(family):
  config = config_lib.base()
  config.model = _model_config(family)
  model = models.build(config.model, VOCAB, VOCAB)
  runner = parallel.make_runner(config.parallel, lambda axis: steps.bind(model, config.train, axis))
  state = runner.put_state(init_state(model, config.train, 0))
  batch = runner.put_batch(random_batch(2 * runner.num_devices, 6, 5, VOCAB))
  exported = _lowers(runner.jitted_train, state, batch, jax.random.PRNGKey(0))
  assert exported.nr_devices == runner.num_devices


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_decode_step_and_decoder_lower_for_accelerators(family):
  model = models.build(_model_config(family), VOCAB, VOCAB)
  batch = {k: jnp.asarray(v) for k, v in random_batch(2, 6, 5, VOCAB).items()}
  variables = model.init(jax.random.PRNGKey(0), batch["src"], batch["tgt_in"])
  variables = {"params": variables["params"]}
  _lowers(jax.jit(lambda v, s, t: model.apply(v, s, t)), variables, batch["src"], batch["tgt_in"])
  state = model.apply(variables, batch["src"], 8, method="init_decode_state")
  step = jax.jit(lambda v, tokens, state: model.apply(v, tokens, state, method="decode_step",
                                                     mutable=["intermediates"]))
  _lowers(step, variables, batch["tgt_in"][:, 0], state)
  _lowers(decode_lib.make_decoder(model, 8), variables, batch["src"])
  _lowers(decode_lib.make_decoder(model, 8, beam_size=2), variables, batch["src"])


def test_an_export_for_the_cpu_runs_as_the_jitted_function():
  """The exported module is the computation: called on the CPU it gives jit's result."""
  model = models.build(_model_config("transformer"), VOCAB, VOCAB)
  batch = {k: jnp.asarray(v) for k, v in random_batch(2, 6, 5, VOCAB).items()}
  variables = {"params": model.init(jax.random.PRNGKey(0), batch["src"], batch["tgt_in"])["params"]}
  forward = jax.jit(lambda v, s, t: model.apply(v, s, t))
  exported = export.export(forward, platforms=("cpu", *PLATFORMS))(variables, batch["src"], batch["tgt_in"])
  np.testing.assert_allclose(exported.call(variables, batch["src"], batch["tgt_in"]),
                             forward(variables, batch["src"], batch["tgt_in"]), rtol=1e-5, atol=1e-5)
