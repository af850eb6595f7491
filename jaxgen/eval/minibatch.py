"""The evaluations' own small networks (the offline feature networks, the MLP baseline of the generative
classifiers) are fitted by one loop: an optax optimizer on minibatches drawn with replacement, in an order that
is a pure function of the seed. Not the trainer: no checkpoints, no EMA, no devices beyond the default one."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import jax
import numpy as np
import optax


def fit_by_minibatches(loss: Callable[[Any, Dict[str, Any]], jax.Array], params, tx: optax.GradientTransformation,
                       data: Dict[str, np.ndarray], *, steps: int, batch_size: int, seed: int = 0,
                       progress: Optional[str] = None):
  """`params` after `steps` updates of `tx` on loss(params, batch) -> scalar; each batch holds `batch_size`
  rows of every array in `data` (the same rows of each), drawn with replacement by np.random.default_rng(seed).
  The step (gradient and update) is one jit. `progress`: the fit's name in progress lines (None: silent)."""
  sizes = {k: len(v) for k, v in data.items()}
  if len(set(sizes.values())) != 1:
    raise ValueError(f"data arrays have different lengths: {sizes}")
  if steps < 0 or batch_size < 1:
    raise ValueError(f"steps={steps} must be >= 0 and batch_size={batch_size} >= 1")
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, batch):
    grads = jax.grad(loss)(params, batch)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), opt

  order = np.random.default_rng(seed)
  n = next(iter(sizes.values()))
  bar = None
  if progress is not None and steps:
    from jaxgen.train.logging import TaskProgress
    bar = TaskProgress(steps, progress, "steps", note=f"batches of {batch_size}; compiling the step")
  for i in range(steps):
    idx = order.integers(0, n, batch_size)
    params, opt = step(params, opt, {k: v[idx] for k, v in data.items()})
    if bar is not None and ((i + 1) % 50 == 0 or i + 1 == steps):
      jax.block_until_ready(params)      # finished steps, not queued ones (every 50: dispatch runs ahead)
      bar.update(i + 1 - bar.done)
  return params
