"""The multi-scale architecture (Dinh et al. 2016; Glow's version with learned priors), as one bijector.

Each level optionally transforms at its input resolution (`pre`: RealNVP's checkerboard couplings), squeezes,
transforms again (`post`: RealNVP's channel couplings or Glow's K steps) and factors out half the channels.
Every factored-out part z_i (and the final h) is standardised by its prior,
  eps_i = (z_i - mu_i) * exp(-log_sigma_i),     log|det| = -sum log_sigma_i,
where (mu_i, log_sigma_i) are
  learned_prior=False: 0 (RealNVP: standard normal for every factored-out part);
  learned_prior=True:  a zero-initialised 3x3 conv of the kept half for split parts and learned constants for
                       the top (Glow's split2d prior and `learntop`);
  num_classes > 0:     plus a learned per-class mean and log-scale for every part (a class-dependent prior
                       p(z | y), Glow's `ycond`); `cond` then holds integer labels (B,).
So the whole model is one bijection x -> eps (B, D) with a standard-normal base:
log p(x | y) = log N(eps; 0, I) + log|det d eps / dx|, and sampling with temperature T is decoding T * N(0, I).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Tuple

import jax
import jax.numpy as jnp

from jaxgen.flows.bijector import squeeze, sum_except_batch, unsqueeze


@dataclasses.dataclass(frozen=True)
class Level:
  pre: Optional[Any] = None
  squeeze: bool = True
  post: Optional[Any] = None
  split: bool = True


def _conv(params, x):
  y = jax.lax.conv_general_dilated(x, params["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return y + params["b"]


@dataclasses.dataclass(frozen=True)
class MultiScale:
  levels: Tuple[Level, ...]
  input_shape: Tuple[int, int, int]
  learned_prior: bool = False
  num_classes: int = 0

  def __post_init__(self):
    self.latent_shapes()     # validates the geometry now, before anything compiles

  def latent_shapes(self):
    """Shapes (H, W, C) of the standardised parts eps_1, ..., eps_top, in order."""
    h, w, c = self.input_shape
    shapes = []
    for i, lvl in enumerate(self.levels):
      if lvl.squeeze:
        if h % 2 or w % 2:
          raise ValueError(f"level {i}: cannot squeeze a {h}x{w} input (odd size); image {self.input_shape} "
                           f"supports fewer levels")
        h, w, c = h // 2, w // 2, 4 * c
      if lvl.split:
        if c < 2:
          raise ValueError(f"level {i}: cannot factor out half of {c} channel(s)")
        shapes.append((h, w, c // 2))
        c = c - c // 2
    shapes.append((h, w, c))
    return tuple(shapes)

  @property
  def event_size(self) -> int:
    return sum(h * w * c for h, w, c in self.latent_shapes())

  def _prior_init(self, rng, z_shape, kept_channels, split: bool):
    p = {}
    if self.learned_prior:
      if split:
        p["conv"] = {"w": jnp.zeros((3, 3, kept_channels, 2 * z_shape[-1]), jnp.float32),
                     "b": jnp.zeros((2 * z_shape[-1],), jnp.float32)}
      else:
        p["mean"] = jnp.zeros(z_shape, jnp.float32)
        p["log_scale"] = jnp.zeros(z_shape, jnp.float32)
    if self.num_classes:
      p["class_mean"] = jnp.zeros((self.num_classes,) + tuple(z_shape), jnp.float32)
      p["class_log_scale"] = jnp.zeros((self.num_classes,) + tuple(z_shape), jnp.float32)
    return p

  def _prior(self, p, kept, cond, batch, z_shape):
    mean = jnp.zeros((batch,) + tuple(z_shape), jnp.float32)
    log_scale = jnp.zeros_like(mean)
    if "conv" in p:
      out = _conv(p["conv"], kept)
      mean, log_scale = mean + out[..., : z_shape[-1]], log_scale + out[..., z_shape[-1]:]
    if "mean" in p:
      mean, log_scale = mean + p["mean"], log_scale + p["log_scale"]
    if self.num_classes:
      if cond is None:
        raise ValueError("this flow has a class-dependent prior: pass integer labels as cond")
      mean, log_scale = mean + p["class_mean"][cond], log_scale + p["class_log_scale"][cond]
    return mean, log_scale

  def init(self, rng, x, cond=None):
    params, shapes = [], self.latent_shapes()
    h, k = x, 0
    for i, lvl in enumerate(self.levels):
      r = jax.random.fold_in(rng, i)
      p = {}
      if lvl.pre is not None:
        p["pre"] = lvl.pre.init(jax.random.fold_in(r, 0), h, cond)
        h, _ = lvl.pre.forward(p["pre"], h, cond)
      if lvl.squeeze:
        h = squeeze(h)
      if lvl.post is not None:
        p["post"] = lvl.post.init(jax.random.fold_in(r, 1), h, cond)
        h, _ = lvl.post.forward(p["post"], h, cond)
      if lvl.split:
        nz = shapes[k][-1]
        p["prior"] = self._prior_init(r, shapes[k], h.shape[-1] - nz, True)
        h, k = h[..., nz:], k + 1
      params.append(p)
    return {"levels": tuple(params), "top": self._prior_init(rng, shapes[-1], 0, False)}

  def forward(self, params, x, cond=None):
    if tuple(x.shape[1:]) != tuple(self.input_shape):
      raise ValueError(f"MultiScale expects inputs of shape (B, {self.input_shape}), got {x.shape}")
    b, shapes = x.shape[0], self.latent_shapes()
    total = jnp.zeros((b,), jnp.float32)
    eps, h, k = [], x, 0
    for lvl, p in zip(self.levels, params["levels"]):
      if lvl.pre is not None:
        h, ld = lvl.pre.forward(p["pre"], h, cond)
        total += ld
      if lvl.squeeze:
        h = squeeze(h)
      if lvl.post is not None:
        h, ld = lvl.post.forward(p["post"], h, cond)
        total += ld
      if lvl.split:
        nz = shapes[k][-1]
        z, h = h[..., :nz], h[..., nz:]
        mean, log_scale = self._prior(p["prior"], h, cond, b, shapes[k])
        eps.append((z - mean) * jnp.exp(-log_scale))
        total -= sum_except_batch(log_scale)
        k += 1
    mean, log_scale = self._prior(params["top"], None, cond, b, shapes[-1])
    eps.append((h - mean) * jnp.exp(-log_scale))
    total -= sum_except_batch(log_scale)
    return jnp.concatenate([e.reshape(b, -1) for e in eps], axis=1), total

  def inverse(self, params, y, cond=None):
    b, shapes = y.shape[0], self.latent_shapes()
    if y.shape[1:] != (self.event_size,):
      raise ValueError(f"MultiScale.inverse expects latents of shape (B, {self.event_size}), got {y.shape}")
    sizes = [h * w * c for h, w, c in shapes]
    offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    parts = [y[:, offsets[i]:offsets[i + 1]].reshape((b,) + tuple(shapes[i])) for i in range(len(shapes))]
    total = jnp.zeros((b,), jnp.float32)
    mean, log_scale = self._prior(params["top"], None, cond, b, shapes[-1])
    h = parts[-1] * jnp.exp(log_scale) + mean
    total += sum_except_batch(log_scale)
    k = len(shapes) - 1
    for lvl, p in reversed(list(zip(self.levels, params["levels"]))):
      if lvl.split:
        k -= 1
        mean, log_scale = self._prior(p["prior"], h, cond, b, shapes[k])
        z = parts[k] * jnp.exp(log_scale) + mean
        total += sum_except_batch(log_scale)
        h = jnp.concatenate([z, h], axis=-1)
      if lvl.post is not None:
        h, ld = lvl.post.inverse(p["post"], h, cond)
        total += ld
      if lvl.squeeze:
        h = unsqueeze(h)
      if lvl.pre is not None:
        h, ld = lvl.pre.inverse(p["pre"], h, cond)
        total += ld
    return h, total
