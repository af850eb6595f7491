"""The train state every model family shares.

TrainState is a pytree: step, params, optimizer state, EMA params and the base PRNG key. The optimizer
(`opt`, a `jaxgen.train.optim.GroupOptimizer`) and the EMA decay are static. Only the trainer's step
(`jaxgen.train.step`) changes it: optimizer updates through `StepContext.optimize`, then one EMA
update and `step += 1` per train step.

The EMA (`finish_step`): ema <- d * ema + (1 - d) * params for the leaves of the EMA groups (default: every
trainable group; a family may name fewer with `ema_groups`, e.g. only a GAN's generator), a copy of the
params for every other leaf. Options (config.optim): `ema_start_step` (before it the EMA is a copy of the
params, d = 0) and `ema_warmup` (d_t = min(decay, (1 + t) / (10 + t)), the ramp-up of TF's
ExponentialMovingAverage, so an early EMA does not hold the initialisation for long). With neither set, d is
the constant `ema_decay`.
Frozen parts restored from another run (jaxgen.train.frozen) are not in the TrainState: the trainer holds
them beside it and merges them into the params the family sees.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

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
  ema_start_step: int = flax.struct.field(pytree_node=False, default=0)
  ema_warmup: bool = flax.struct.field(pytree_node=False, default=False)
  ema_groups: Optional[Tuple[str, ...]] = flax.struct.field(pytree_node=False, default=None)

  @classmethod
  def create(cls, *, params, opt: GroupOptimizer, rng, ema_decay: float, ema_start_step: int = 0,
             ema_warmup: bool = False, ema_groups: Optional[Tuple[str, ...]] = None):
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt.init(params),
               ema_params=jax.tree.map(jnp.asarray, params), rng=rng, opt=opt, ema_decay=ema_decay,
               ema_start_step=ema_start_step, ema_warmup=ema_warmup,
               ema_groups=None if ema_groups is None else tuple(ema_groups))

  def ema_rate(self):
    """The decay d this step's EMA update uses (a Python float when it is constant)."""
    d = self.ema_decay
    if self.ema_warmup:
      t = self.step.astype(jnp.float32)
      d = jnp.minimum(d, (1.0 + t) / (10.0 + t))
    if self.ema_start_step:
      d = jnp.where(self.step < self.ema_start_step, 0.0, d)
    return d

  def step_rng(self):
    return jax.random.fold_in(self.rng, self.step)

  def finish_step(self):
    """ema <- d * ema + (1 - d) * params for the EMA groups' leaves (every other leaf, 'frozen' and 'buffer'
    ones included, is copied); step += 1. Called once per train step, after every group's update."""
    d = self.ema_rate()
    labels = self.opt.labels(self.params)
    groups = self.opt.groups if self.ema_groups is None else self.ema_groups
    ema = jax.tree.map(lambda e, p, lab: d * e + (1.0 - d) * p if lab in groups and lab not in NON_TRAINABLE
                       else p, self.ema_params, self.params, labels)
    return self.replace(step=self.step + 1, ema_params=ema)
