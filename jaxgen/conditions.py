"""Conditions: what a conditional model is given beside its input, as one pytree everywhere.

A condition is a dict of arrays that share a leading batch axis; None (or {}) means unconditional:
  label      int32 (B,)       a class id in [0, K); its null value is K, the null class
  tokens     int32 (B, L)     caption token ids, 0-padded; null: all 0 (the empty caption)
  embedding  float32 (B, D)   a vector such as a CLIP embedding; null: zeros
  token_features  float32 (B, L, W)  per-token features of a caption (a text encoder's outputs, the
                  context of unCLIP's prior, jaxgen.nn.prior_transformer); null: zeros
Networks take it as `cond` (`UNet(x, t, cond)`, a GAN generator `(z, cond)`), families as
`sample(params, rng, num, cond=None)`. A family declares the features it reads from a batch
(`cond_features`, e.g. ('label',)) and their null values (`cond_nulls`); `from_batch` picks them out of a
training batch, `drop` replaces each example's whole condition by its null value with a probability
(classifier-free guidance's condition dropout), `null` replaces all of them (the unconditional pass of the
guided sampler, jaxgen.diffusion.guidance). The helpers are pure functions of arrays: they run inside
compiled steps and samplers.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp

COND_FEATURES = ("label", "tokens", "embedding", "token_features")
Cond = Optional[Dict[str, Any]]


def check_features(features: Sequence[str], where: str = "cond_features") -> None:
  bad = [f for f in features if f not in COND_FEATURES]
  if bad:
    raise ValueError(f"{where} has {bad}; conditions are made of: {', '.join(COND_FEATURES)}")


def from_batch(batch: Mapping[str, Any], features: Sequence[str]) -> Cond:
  """The condition a family reads from a training batch (None when it reads none)."""
  if not features:
    return None
  missing = [f for f in features if f not in batch]
  if missing:
    raise ValueError(f"the batch has no {missing} (it holds {sorted(batch)}); the family is conditioned on "
                     f"{tuple(features)}")
  return {f: jnp.asarray(batch[f]) for f in features}


def check_cond(cond: Cond, features: Sequence[str], batch: int, what: str = "the model") -> Cond:
  """`cond` must hold exactly `features`, each with leading axis `batch` (raises ValueError naming what is
  wrong); returns it (None for an unconditional model)."""
  have = tuple(sorted(cond or {}))
  if not features:
    if have:
      raise ValueError(f"{what} is unconditional but was given a condition with {list(have)}")
    return None
  if have != tuple(sorted(features)):
    raise ValueError(f"{what} is conditioned on {tuple(features)} but was given {list(have) or 'no condition'}")
  for k, v in cond.items():
    if jnp.shape(v)[:1] != (batch,):
      raise ValueError(f"cond[{k!r}] has shape {tuple(jnp.shape(v))}; its leading axis must be the batch ({batch})")
  return cond


def null(cond: Cond, nulls: Mapping[str, Any]) -> Cond:
  """Every example's condition replaced by its null value (`nulls[feature]`, a scalar)."""
  if not cond:
    return cond
  return {k: jnp.full_like(v, nulls[k]) for k, v in cond.items()}


def drop(cond: Cond, rng, prob: float, nulls: Mapping[str, Any]) -> Cond:
  """Each example's whole condition (every feature together) replaced by its null value with probability
  `prob`; one Bernoulli draw per example from `rng`."""
  if not cond or prob <= 0:
    return cond
  b = jax.tree.leaves(cond)[0].shape[0]
  dropped = jax.random.bernoulli(rng, prob, (b,))
  return {k: jnp.where(dropped.reshape((b,) + (1,) * (jnp.ndim(v) - 1)), jnp.asarray(nulls[k], v.dtype), v)
          for k, v in cond.items()}


def concat(a: Cond, b: Cond) -> Cond:
  """Two conditions stacked along the batch axis (the conditional and the null pass in one batch)."""
  if not a:
    return a
  return {k: jnp.concatenate([a[k], b[k]]) for k in a}


def take(cond: Cond, index) -> Cond:
  """The examples `index` (a slice or an index array) of a condition."""
  if not cond:
    return cond
  return {k: v[index] for k, v in cond.items()}


def repeat(cond: Cond, n: int) -> Cond:
  """Each example's condition repeated n times in a row (k candidates per caption)."""
  if not cond:
    return cond
  return {k: jnp.repeat(v, n, axis=0) for k, v in cond.items()}


def grid_labels(num: int, num_classes: int) -> jax.Array:
  """Class of sample i for a conditional sample grid: classes in equal consecutive runs (one row per class
  when the grid has num / num_classes columns)."""
  return ((jnp.arange(num) * max(num_classes, 1)) // num).astype(jnp.int32)
