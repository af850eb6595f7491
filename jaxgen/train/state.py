"""The train state every model family shares, and the optimizer built from a config.

TrainState is a pytree: step, params, optimizer state, EMA params and the base PRNG key. The optimizer
(`tx`) and the EMA decay are static. `apply_gradients` runs inside the compiled step, so the EMA update is
fused with the optimizer update.
"""
from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # int32 scalar: optimizer steps taken
  params: Any
  opt_state: Any
  ema_params: Any
  rng: jax.Array           # base key; the key for step s is fold_in(rng, s)
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  ema_decay: float = flax.struct.field(pytree_node=False, default=0.9999)

  @classmethod
  def create(cls, *, params, tx, rng, ema_decay: float):
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
               ema_params=jax.tree.map(jnp.asarray, params), rng=rng, tx=tx, ema_decay=ema_decay)

  def apply_gradients(self, grads, **replace):
    """params <- optimizer update; ema <- decay * ema + (1 - decay) * params; step += 1."""
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    params = optax.apply_updates(self.params, updates)
    d = self.ema_decay
    ema = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, self.ema_params, params)
    return self.replace(step=self.step + 1, params=params, opt_state=opt_state, ema_params=ema, **replace)

  def step_rng(self):
    return jax.random.fold_in(self.rng, self.step)


def learning_rate_schedule(learning_rate: float, warmup_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `learning_rate` over `warmup_steps`, then constant (Ho et al. 2020)."""
  if warmup_steps <= 0:
    return optax.constant_schedule(learning_rate)
  return optax.linear_schedule(0.0, learning_rate, warmup_steps)


def make_optimizer(optim_config) -> optax.GradientTransformation:
  """Adam with linear warmup and global-norm gradient clipping, from `config.optim`.

  Fields: learning_rate, warmup_steps, grad_clip (<= 0 disables), b1, b2, eps, weight_decay (AdamW if > 0).
  """
  c = optim_config
  schedule = learning_rate_schedule(c.learning_rate, c.warmup_steps)
  parts = []
  if c.get("grad_clip", 0) and c.grad_clip > 0:
    parts.append(optax.clip_by_global_norm(c.grad_clip))
  if c.get("weight_decay", 0.0):
    parts.append(optax.adamw(schedule, b1=c.get("b1", 0.9), b2=c.get("b2", 0.999), eps=c.get("eps", 1e-8),
                             weight_decay=c.weight_decay))
  else:
    parts.append(optax.adam(schedule, b1=c.get("b1", 0.9), b2=c.get("b2", 0.999), eps=c.get("eps", 1e-8)))
  return optax.chain(*parts)
