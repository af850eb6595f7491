"""Helpers the benchmark scripts share: the median wall time of a call, and one compiled train step of the shared
trainer measured (XLA's FLOPs, the median step time, the compile time)."""
from __future__ import annotations

import time


def median_time(fn, n):
  import numpy as np
  times = []
  for _ in range(n):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def step_row(family, config, batch, steps, start_step: int = 0):
  """(measurements of the compiled train step, params with the frozen parts merged in for sampling); the state
  starts at `start_step`, compiled for its phase (a family with phases: a progressive GAN's level)."""
  import jax
  from jaxgen.train import parallel, trainer
  from jaxgen.train.frozen import load_parts, merge
  mesh = parallel.make_data_mesh()
  arr = parallel.global_batch(batch, mesh)
  state = trainer.create_train_state(family, config, mesh, arr)
  if start_step:
    state = state.replace(step=jax.device_put(jax.numpy.asarray(start_step, state.step.dtype), state.step.sharding))
  frozen = jax.device_put(load_parts(family.frozen_parts)[0], parallel.replicated(mesh)) \
      if getattr(family, "frozen_parts", None) else None
  copy = jax.tree.map(lambda a: a.copy(), state.params)      # the step donates the state
  params = merge(copy, frozen) if frozen else copy
  step_fn = trainer.make_train_step(trainer.phase_family(family, start_step)[1], mesh, with_frozen=bool(frozen))
  extra = (frozen,) if frozen else ()
  t0 = time.perf_counter()
  compiled = step_fn.lower(state, *extra, arr).compile()
  compile_s = time.perf_counter() - t0
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  s = state

  def one():
    nonlocal s
    s, m = compiled(s, *extra, arr)
    jax.block_until_ready(m)
  one()
  one()
  return {"gflop": float(cost["flops"]) / 1e9, "step_s": median_time(one, steps), "compile_s": compile_s}, params
