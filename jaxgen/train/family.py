"""The family contract: what a generative method gives the one trainer.

A family is a small frozen dataclass of static settings and networks whose methods are pure functions of a
params pytree. It implements `Family` (the default path: the trainer differentiates `loss`) or
`MultiStepFamily` (an update that is not one gradient step, e.g. a GAN's D step, then G against the updated
D). The trainer owns everything else: the optimizer of each parameter group, clipping, the EMA, the step
counter, the non-finite check, checkpoints, logging and sample grids (jaxgen.train.step, .trainer).

Optional members, read with getattr:
  param_groups: tuple[str, ...]     trainable groups, default ('default',), any names; config.optim.groups.<g>
  param_labels(params) -> labels    a pytree of group names like params; 'frozen' and 'buffer' are not trained
  ema_groups: tuple[str, ...]       the groups the EMA averages (default: every trainable group)
  frozen_parts: {name: FrozenPart}  sub-trees restored from other runs, merged into the params the family
                                    sees, never trained or saved (jaxgen.train.frozen)
  cond_features, cond_nulls, default_cond(num)   the condition it reads from a batch (jaxgen.conditions)
  sample(params, rng, num, cond=None, **options) -> samples   images in [-1, 1] (N, H, W, C) or vectors (N, D)
  num_classes: int                  > 0: class-conditional (cond['label'])
  phase(step: int) -> hashable      the step's phase (None: the same for every step); the trainer compiles
  at_phase(phase) -> family         one step per phase, from at_phase(phase): a family whose networks change
                                    with the step (a progressive GAN's level) runs only its phase's layers with
                                    static shapes. Every phase has the same params (created at init), so the
                                    checkpoint never changes; phases follow the step in order, never return.
Metrics returned by `loss`/`update` are scalars with plain names ('loss', 'd_loss', 'bits_per_dim'); the
trainer logs them as 'train/<name>'. Evaluations (jaxgen.eval) return names '<section>/<name>' with section
one of METRIC_SECTIONS.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Protocol, Tuple, runtime_checkable

import jax
import jax.numpy as jnp

METRIC_SECTIONS = ("train", "test", "samples", "perf")
METRIC_NAME = re.compile(r"^(%s)(/[A-Za-z0-9_.]+)+$" % "|".join(METRIC_SECTIONS))


@runtime_checkable
class Family(Protocol):
  def init(self, rng: jax.Array, batch: Dict[str, Any]) -> Any:
    """Parameters; `batch` is a global example batch (shapes, and data-dependent init such as actnorm)."""

  def loss(self, params: Any, batch: Dict[str, Any], rng: jax.Array) -> Tuple[jax.Array, Dict[str, jax.Array]]:
    """(scalar loss to minimise, metrics) on one training batch."""


@runtime_checkable
class MultiStepFamily(Protocol):
  def init(self, rng: jax.Array, batch: Dict[str, Any]) -> Any:
    ...

  def update(self, state, batch: Dict[str, Any], rng: jax.Array, opt) -> Tuple[Any, Dict[str, jax.Array]]:
    """One train step through `opt.optimize(state, grads, groups=(...))` (jaxgen.train.step.StepContext)
    for each group (several times for n_critic), buffers through `opt.refresh_buffers`, the params with the
    frozen parts merged in through `opt.params(state)`; step-dependent behaviour reads `state.step`. No EMA,
    no step counter: the trainer does both after it."""


from jaxgen.conditions import grid_labels  # noqa: E402,F401  (the grid's classes; kept importable from here)
