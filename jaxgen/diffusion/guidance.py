"""Classifier-free guidance (Ho & Salimans 2022) for any condition, as a wrapper of the samplers' model_fn.

`cond_model_fn(x_t, t, cond) -> (eps, x0)` is a conditional model; `guided_model_fn` returns the samplers'
`model_fn(x_t, t) -> (eps, x0)` that predicts

  eps = (1 + w) eps(x_t, c) - w eps(x_t, null),   x0 likewise,

with the conditional and the null pass in one batch of 2B. The null condition is the family's (every feature
at its null value, jaxgen.conditions.null), so guidance works the same for class labels, captions and
embeddings. w = 0 is the plain conditional model (one pass).
"""
from __future__ import annotations

from typing import Callable, Mapping

import jax.numpy as jnp

from jaxgen import conditions


def guided_model_fn(cond_model_fn: Callable, cond, nulls: Mapping, guidance: float) -> Callable:
  if not cond or guidance == 0:
    return lambda xt, t: cond_model_fn(xt, t, cond)
  both = conditions.concat(cond, conditions.null(cond, nulls))

  def fn(xt, t):
    eps, x0 = cond_model_fn(jnp.concatenate([xt, xt]), jnp.concatenate([t, t]), both)
    b = xt.shape[0]
    mix = lambda v: (1.0 + guidance) * v[:b] - guidance * v[b:]    # noqa: E731
    return mix(eps), mix(x0)
  return fn
