"""Bijectors: pairs of pure functions with their log-determinants, parameters held outside.

A bijector is any object with
  init(rng, x, cond=None) -> params                  x: an example batch, so data-dependent init (actnorm) is
                                                     an explicit, pure init step and never a hidden flag
  forward(params, x, cond=None) -> (y, log_det)      log_det = log|det dy/dx| per example, float32 (B,)
  inverse(params, y, cond=None) -> (x, log_det)      log_det = log|det dx/dy| = -forward log_det
Every array carries a leading batch axis; `cond` is an optional per-example conditioning (class labels) that
layers may ignore. `Chain` composes (summing log-dets in float32) and `Repeat` stacks the parameters of one
repeated step and runs it with `lax.scan`, so compile time stays flat as depth grows.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Tuple

import jax
import jax.numpy as jnp


def sum_except_batch(a) -> jax.Array:
  """Sum over every axis but the first, in float32: (B, ...) -> (B,)."""
  a = jnp.asarray(a, jnp.float32)
  return a.reshape(a.shape[0], -1).sum(axis=1)


def check_batched(x, min_ndim: int, what: str) -> None:
  if x.ndim < min_ndim:
    raise ValueError(f"{what}: expected an input with a batch axis and ndim >= {min_ndim}, got shape {x.shape}")


@dataclasses.dataclass(frozen=True)
class Chain:
  """bijectors[0] first: forward = b_n o ... o b_1, log-dets summed."""
  bijectors: Tuple[Any, ...]

  def init(self, rng, x, cond=None):
    params = []
    for i, b in enumerate(self.bijectors):
      p = b.init(jax.random.fold_in(rng, i), x, cond)
      x, _ = b.forward(p, x, cond)
      params.append(p)
    return tuple(params)

  def forward(self, params, x, cond=None):
    total = jnp.zeros((x.shape[0],), jnp.float32)
    for b, p in zip(self.bijectors, params):
      x, ld = b.forward(p, x, cond)
      total = total + ld
    return x, total

  def inverse(self, params, y, cond=None):
    total = jnp.zeros((y.shape[0],), jnp.float32)
    for b, p in reversed(list(zip(self.bijectors, params))):
      y, ld = b.inverse(p, y, cond)
      total = total + ld
    return y, total


@dataclasses.dataclass(frozen=True)
class Repeat:
  """`num` copies of `step` with their own parameters, stacked on a leading axis and run with lax.scan.

  The init is a scan too: each copy is initialised on the output of the previous one, so data-dependent
  initialisation (actnorm) sees the activations it will act on.
  """
  step: Any
  num: int

  def __post_init__(self):
    if self.num < 1:
      raise ValueError(f"Repeat.num={self.num} must be >= 1")

  def init(self, rng, x, cond=None):
    def body(h, key):
      p = self.step.init(key, h, cond)
      h, _ = self.step.forward(p, h, cond)
      return h, p
    _, params = jax.lax.scan(body, x, jax.random.split(rng, self.num))
    return params

  def forward(self, params, x, cond=None):
    def body(carry, p):
      h, total = carry
      h, ld = self.step.forward(p, h, cond)
      return (h, total + ld), None
    (x, total), _ = jax.lax.scan(body, (x, jnp.zeros((x.shape[0],), jnp.float32)), params)
    return x, total

  def inverse(self, params, y, cond=None):
    def body(carry, p):
      h, total = carry
      h, ld = self.step.inverse(p, h, cond)
      return (h, total + ld), None
    (y, total), _ = jax.lax.scan(body, (y, jnp.zeros((y.shape[0],), jnp.float32)), params, reverse=True)
    return y, total


@dataclasses.dataclass(frozen=True)
class Squeeze:
  """Space-to-depth (Dinh et al. 2016): (B, H, W, C) -> (B, H/2, W/2, 4C); volume preserving (log_det = 0)."""

  def init(self, rng, x, cond=None):
    check_batched(x, 4, "Squeeze")
    b, h, w, c = x.shape
    if h % 2 or w % 2:
      raise ValueError(f"Squeeze needs even height and width, got {h}x{w}")
    return {}

  def forward(self, params, x, cond=None):
    b, h, w, c = x.shape
    y = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, h // 2, w // 2, 4 * c)
    return y, jnp.zeros((b,), jnp.float32)

  def inverse(self, params, y, cond=None):
    b, h, w, c4 = y.shape
    c = c4 // 4
    x = y.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c)
    return x, jnp.zeros((b,), jnp.float32)


def squeeze(x):
  return Squeeze().forward({}, x)[0]


def unsqueeze(y):
  return Squeeze().inverse({}, y)[0]
