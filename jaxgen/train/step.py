"""The train step the trainer builds for every family (see jaxgen.train.family for the protocol).

Default path: the family gives `loss(params, batch, rng) -> (loss, metrics)`; the step takes its gradient
and hands it to `StepContext.optimize`. Families whose update is not one gradient step (a GAN) give
`update(state, batch, rng, opt) -> (state, metrics)` and call `opt.optimize(state, grads, groups=...)`
once per group instead. Either way the step then runs the EMA and `step += 1` (`TrainState.finish_step`),
and adds what the optimizer did to the metrics:
  grad_norm[/<group>]      global norm of the group's gradients, before clipping
  learning_rate[/<group>]  the learning rate the group's update used (from its optimizer state)
  finite                   1.0 when every group's gradient norm and learning rate are finite, else 0.0 (so
                           every gradient is finite and, from finite parameters, every updated one)
(the '/<group>' suffix only when the family has several trainable groups; a group updated several times in
one step, e.g. a critic's n_critic updates, reports its last update). The trainer checks `finite` and every
scalar metric at its next log boundary, without a host sync per step.

Frozen parts restored from another run (jaxgen.train.frozen) come in beside the state: the family sees its
params with them merged in (`loss(merge(params, frozen), ...)`, in `update` through `opt.params(state)`); gradients are taken with respect to the trained params only.
Step-dependent behaviour (a regulariser every k steps, a fade-in alpha) reads `state.step` inside `update`:
one compiled step serves every step.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxgen.train.frozen import merge
from jaxgen.train.optim import BUFFER, select
from jaxgen.train.state import TrainState


def _all_finite(leaves) -> jax.Array:
  ok = jnp.ones((), jnp.bool_)
  for x in leaves:
    ok = ok & jnp.all(jnp.isfinite(x))
  return ok


class StepContext:
  """What one trace of the train step uses to update a TrainState; collects the optimizer's metrics.

  A fresh context is made inside every trace of the step, so recording into it is trace-time bookkeeping of
  traced values, returned by the step as outputs (the step stays a pure function).
  """

  def __init__(self, frozen=None):
    self.metrics: Dict[str, jax.Array] = {}
    self.frozen = frozen
    self._finite = jnp.ones((), jnp.bool_)
    self._updated = []

  def params(self, state: TrainState):
    """The family's view of the trained params: with the frozen parts merged in."""
    return merge(state.params, self.frozen)

  def _name(self, state: TrainState, base: str, group: str) -> str:
    return base if len(state.opt.groups) == 1 else f"{base}/{group}"

  def optimize(self, state: TrainState, grads, groups: Optional[Sequence[str]] = None) -> TrainState:
    """Apply the optimizer of `groups` (default: all trainable groups) to `grads` (a full params-shaped tree;
    leaves of other groups are ignored). A group may be updated several times in one step (n_critic)."""
    opt = state.opt
    groups = opt.groups if groups is None else tuple(groups)
    unknown = [g for g in groups if g not in opt.groups]
    if unknown:
      raise ValueError(f"groups {unknown} are not trainable groups of this family ({', '.join(opt.groups)})")
    updates, opt_state, norms = opt.update_with_norms(grads, state.opt_state, state.params, groups)
    params = optax.apply_updates(state.params, updates)
    for g in groups:
      self.metrics[self._name(state, "grad_norm", g)] = norms[g]
      self.metrics[self._name(state, "learning_rate", g)] = lr = opt.applied_learning_rate(opt_state[g])
      # Finite norm <=> every gradient of the group finite (an overflowing sum of squares, a norm past 1.8e19,
      # counts as non-finite too); with finite gradients and learning rate, Adam's update of finite parameters
      # is finite, so this one scalar per group stands for a check of every updated parameter (a reduction
      # per leaf, which doubled the step's compile time).
      self._finite = self._finite & jnp.isfinite(norms[g]) & jnp.isfinite(lr)
    self._updated.extend(g for g in groups if g not in self._updated)
    return state.replace(params=params, opt_state=opt_state)

  def refresh_buffers(self, state: TrainState, new_params) -> TrainState:
    """Take the 'buffer' leaves (e.g. spectral-norm vectors) from `new_params`; every other leaf is kept."""
    labels = state.opt.labels(state.params)
    params = jax.tree.map(lambda old, new, lab: new if lab == BUFFER else old, state.params, new_params, labels)
    self._finite = self._finite & _all_finite(select(params, labels, (BUFFER,)))
    return state.replace(params=params)

  def finish(self) -> Dict[str, jax.Array]:
    return dict(self.metrics, finite=self._finite.astype(jnp.float32))


def is_multi_step(family) -> bool:
  return hasattr(family, "update")


def train_step(family, state: TrainState, batch, frozen=None) -> tuple[TrainState, Dict[str, Any]]:
  """One train step of any family: pure; the key is fold_in(state.rng, state.step); `frozen`: the frozen parts
  (jaxgen.train.frozen), merged into the params the family sees, never differentiated."""
  rng = state.step_rng()
  ctx = StepContext(frozen)
  if is_multi_step(family):
    state, metrics = family.update(state, batch, rng, ctx)
  else:
    loss_fn = (lambda p, b, r: family.loss(merge(p, frozen), b, r)) if frozen else family.loss
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, rng)
    state = ctx.optimize(state, grads)
  missing = [g for g in state.opt.groups if g not in ctx._updated]
  if missing:
    raise ValueError(f"the step updated no parameters of groups {missing}")
  return state.finish_step(), {**metrics, **ctx.finish()}
