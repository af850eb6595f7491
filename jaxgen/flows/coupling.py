"""Coupling layers: NICE additive coupling and diagonal scaling, RealNVP/Glow affine coupling.

A masked coupling keeps the dimensions where the binary mask m is 1 and transforms the others with a shift t
and a scale s computed from the kept ones (Dinh et al. 2014, 2016):
  forward   y = m * x + (1 - m) * (x * s(m x) + t(m x))          log|det| = sum (1 - m) log s
  inverse   x = m * y + (1 - m) * (y - t(m y)) / s(m y)
Additive coupling (NICE) is s = 1. The scale is never a bare exp of the network output:
  'sigmoid': s = sigmoid(h + 2)                  (Glow; s in (0, 1), about 0.88 at init)
  'tanh':    log s = a * tanh(h), a learned per channel, init 1   (RealNVP re-implementations)
Masks: 'checkerboard' alternates over (H, W) of NHWC images; 'channel' keeps the first half of the last axis
(for 2-D vectors this is the first coordinate). `parity` = 1 swaps the roles of the halves.
The conditioner sees concat(m * x, m), so it knows which entries are given.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from jaxgen.flows.bijector import check_batched, sum_except_batch

MASKS = ("checkerboard", "channel")
KINDS = ("affine", "additive")
SCALES = ("sigmoid", "tanh")


def coupling_mask(shape, mask: str, parity: int) -> jax.Array:
  """Binary float32 mask broadcastable to an input of `shape` (batch axis included); 1 = kept."""
  if mask == "checkerboard":
    if len(shape) != 4:
      raise ValueError(f"checkerboard mask needs NHWC inputs, got shape {tuple(shape)}")
    h, w = shape[1], shape[2]
    m = (jnp.arange(h)[:, None] + jnp.arange(w)[None, :]) % 2
    m = m[None, :, :, None]
  elif mask == "channel":
    c = shape[-1]
    if c < 2:
      raise ValueError(f"channel mask needs >= 2 channels in the last axis, got shape {tuple(shape)}")
    m = (jnp.arange(c) < (c + 1) // 2).astype(jnp.int32)
    m = m.reshape((1,) * (len(shape) - 1) + (c,))
  else:
    raise ValueError(f"unknown coupling mask {mask!r}; choose one of: {', '.join(MASKS)}")
  m = m if parity % 2 == 0 else 1 - m
  return m.astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Coupling:
  """A masked coupling; `conditioner(out_channels)` builds the linen network (see jaxgen.nn.conditioners)."""
  conditioner: Callable
  mask: str = "channel"
  parity: int = 0
  kind: str = "affine"
  scale: str = "tanh"

  def __post_init__(self):
    if self.mask not in MASKS:
      raise ValueError(f"unknown coupling mask {self.mask!r}; choose one of: {', '.join(MASKS)}")
    if self.kind not in KINDS:
      raise ValueError(f"unknown coupling kind {self.kind!r}; choose one of: {', '.join(KINDS)}")
    if self.scale not in SCALES:
      raise ValueError(f"unknown coupling scale {self.scale!r}; choose one of: {', '.join(SCALES)}")

  def _net(self, c):
    return self.conditioner(2 * c if self.kind == "affine" else c)

  def init(self, rng, x, cond=None):
    check_batched(x, 2, "Coupling")
    m = coupling_mask(x.shape, self.mask, self.parity)
    c = x.shape[-1]
    params = {"net": self._net(c).init(rng, self._net_input(x, m))["params"]}
    if self.kind == "affine" and self.scale == "tanh":
      params["tanh_scale"] = jnp.ones((c,), jnp.float32)
    return params

  @staticmethod
  def _net_input(x, m):
    kept = x * m
    return jnp.concatenate([kept, jnp.broadcast_to(m, x.shape)], axis=-1)

  def _shift_log_scale(self, params, x, m):
    c = x.shape[-1]
    out = self._net(c).apply({"params": params["net"]}, self._net_input(x, m)).astype(jnp.float32)
    if self.kind == "additive":
      return out, jnp.zeros_like(out)
    shift, h = out[..., :c], out[..., c:]
    if self.scale == "sigmoid":
      log_s = jax.nn.log_sigmoid(h + 2.0)
    else:
      log_s = params["tanh_scale"] * jnp.tanh(h)
    return shift, log_s

  def forward(self, params, x, cond=None):
    m = coupling_mask(x.shape, self.mask, self.parity)
    shift, log_s = self._shift_log_scale(params, x, m)
    y = m * x + (1 - m) * (x * jnp.exp(log_s) + shift)
    return y, sum_except_batch((1 - m) * log_s)

  def inverse(self, params, y, cond=None):
    m = coupling_mask(y.shape, self.mask, self.parity)
    shift, log_s = self._shift_log_scale(params, y, m)
    x = m * y + (1 - m) * (y - shift) * jnp.exp(-log_s)
    return x, -sum_except_batch((1 - m) * log_s)


@dataclasses.dataclass(frozen=True)
class DiagonalScaling:
  """NICE's final layer: y = x * exp(s), one learned log-scale s per dimension (all non-batch axes)."""

  def init(self, rng, x, cond=None):
    check_batched(x, 2, "DiagonalScaling")
    return {"log_scale": jnp.zeros(x.shape[1:], jnp.float32)}

  def forward(self, params, x, cond=None):
    s = params["log_scale"]
    return x * jnp.exp(s), jnp.broadcast_to(jnp.sum(s), (x.shape[0],)).astype(jnp.float32)

  def inverse(self, params, y, cond=None):
    s = params["log_scale"]
    return y * jnp.exp(-s), jnp.broadcast_to(-jnp.sum(s), (y.shape[0],)).astype(jnp.float32)
