"""The train state every model family shares.

TrainState is a pytree: step, params, optimizer state, EMA params and the base PRNG key. The optimizer
(`opt`, a `jaxgen.train.optim.GroupOptimizer`) and the EMA decay are static. Only the trainer's step
(`jaxgen.train.step`) changes it: optimizer updates through `StepContext.optimize`, then one EMA
update and `step += 1` per train step.
"""
from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from jaxgen.train.optim import GroupOptimizer, NON_TRAINABLE


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # int32 scalar: train steps taken
  params: Any
  opt_state: Any
  ema_params: Any
  rng: jax.Array           # base key; the key for step s is fold_in(rng, s)
  opt: GroupOptimizer = flax.struct.field(pytree_node=False)
  ema_decay: float = flax.struct.field(pytree_node=False, default=0.9999)

  @classmethod
  def create(cls, *, params, opt: GroupOptimizer, rng, ema_decay: float):
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt.init(params),
               ema_params=jax.tree.map(jnp.asarray, params), rng=rng, opt=opt, ema_decay=ema_decay)

  def step_rng(self):
    return jax.random.fold_in(self.rng, self.step)

  def finish_step(self):
    """ema <- decay * ema + (1 - decay) * params for trained leaves (frozen and buffer leaves are copied);
    step += 1. Called once per train step, after every group's update."""
    d = self.ema_decay
    labels = self.opt.labels(self.params)
    ema = jax.tree.map(lambda e, p, lab: p if lab in NON_TRAINABLE else d * e + (1.0 - d) * p,
                       self.ema_params, self.params, labels)
    return self.replace(step=self.step + 1, ema_params=ema)
