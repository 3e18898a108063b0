"""The train state and the Optax optimizer built from `config.train`."""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from attnjax.models import init_params


@flax.struct.dataclass
class TrainState:
  """Everything a training step reads and writes; a pytree, so jit, pmap and Orbax see it whole."""

  step: jax.Array
  params: Any
  opt_state: Any
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

  @classmethod
  def create(cls, params, tx: optax.GradientTransformation) -> "TrainState":
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), tx=tx)

  def apply_gradients(self, grads) -> "TrainState":
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                        opt_state=opt_state)


def learning_rate_schedule(train_cfg) -> optax.Schedule:
  """Linear warmup, then inverse square root (Vaswani et al. 2017, eq. 3), cosine or constant."""
  peak, warmup = train_cfg.learning_rate, max(int(train_cfg.warmup_steps), 0)
  warm = optax.linear_schedule(0.0, peak, max(warmup, 1))
  if train_cfg.schedule == "constant":
    after = optax.constant_schedule(peak)
  elif train_cfg.schedule == "rsqrt":
    after = lambda step: peak * jnp.sqrt(max(warmup, 1) / jnp.maximum(step + max(warmup, 1), 1.0))
  elif train_cfg.schedule == "cosine":
    after = optax.cosine_decay_schedule(peak, max(train_cfg.num_steps - warmup, 1))
  else:
    raise ValueError(f"train.schedule={train_cfg.schedule!r}: expected rsqrt, cosine or constant")
  if warmup == 0:
    return after
  return optax.join_schedules([warm, after], [warmup])


def make_optimizer(train_cfg) -> optax.GradientTransformation:
  """Adam or AdamW with global-norm clipping, driven by the schedule above."""
  schedule = learning_rate_schedule(train_cfg)
  if train_cfg.optimizer == "adam":
    opt = optax.adam(schedule, b1=0.9, b2=0.98, eps=1e-9)
  elif train_cfg.optimizer == "adamw":
    opt = optax.adamw(schedule, b1=0.9, b2=0.98, eps=1e-9, weight_decay=train_cfg.weight_decay)
  else:
    raise ValueError(f"train.optimizer={train_cfg.optimizer!r}: expected adam or adamw")
  if train_cfg.clip_norm > 0:
    return optax.chain(optax.clip_by_global_norm(train_cfg.clip_norm), opt)
  return opt


def init_state(model, train_cfg, seed: int) -> TrainState:
  """Fresh parameters (from `seed`) and optimizer state for `model`."""
  return TrainState.create(init_params(model, seed), make_optimizer(train_cfg))
