r"""Dequantisation, the preprocessing bijections of RealNVP and Glow, and bits per dimension.

8-bit data are first reduced to the data's K = num_bins grey levels, b = floor(x K / 256) in {0, ..., K-1}
(K = 256 keeps x; a power of two is Glow's n_bits_x; the bundled digits have K = 17 levels, which this maps
to 0..16 exactly), then dequantised uniformly: x~ = b + u, u ~ U[0, 1)^D, so x~ lies in [0, K)^D.
A flow density p_Y on the preprocessed y = g(x~) gives the continuous density
  log p(x~) = log p_Y(g(x~)) + log|det dg/dx~|
and, by Jensen (Theis et al. 2016), -log P(x) <= E_u[-log p(x + u)] for the discrete data. We report

  bits/dim = -( log p_Y(y) + log|det dg/dx~| ) / (D ln 2),

averaged over examples, with D = H*W*C and the preprocessing g (its Jacobian is part of the likelihood):
  'shift' (Glow):    y = x~ / K - 1/2 in [-1/2, 1/2)              log|det| = -D ln K
  'logit' (RealNVP): p = a + (1 - 2a) x~ / K, y = logit(p)        log|det| = sum [ln(1 - 2a) - ln p - ln(1 - p)]
                                                                              - D ln K          (a = logit_alpha)
so bits/dim are those of the K-level data (at most log2 K for any sensible model). Evaluation uses the same
uniform dequantisation (never the mid-point), one fixed noise draw per example.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxgen.flows.bijector import sum_except_batch

PREPROCESSINGS = ("shift", "logit")
NUM_BINS = 256


def check_num_bins(num_bins) -> int:
  if not isinstance(num_bins, int) or isinstance(num_bins, bool) or not 2 <= num_bins <= NUM_BINS:
    raise ValueError(f"num_bins={num_bins!r} must be an integer in [2, {NUM_BINS}] (the data's grey levels)")
  return num_bins


def quantize(images, num_bins: int = NUM_BINS) -> jax.Array:
  """uint8 images -> bin indices floor(x num_bins / 256) in {0, ..., num_bins - 1}, float32."""
  x = jnp.asarray(images).astype(jnp.int32)
  if num_bins != NUM_BINS:
    x = (x * num_bins) // NUM_BINS
  return x.astype(jnp.float32)


def uniform_dequantize(images, rng, num_bins: int = NUM_BINS) -> jax.Array:
  """uint8 images -> x~ = b + u in [0, num_bins), float32, b = quantize(x), u ~ U[0, 1)."""
  b = quantize(images, num_bins)
  return b + jax.random.uniform(rng, b.shape, jnp.float32)


def preprocess(x_tilde, kind: str, logit_alpha: float = 0.05, num_bins: int = NUM_BINS):
  """x~ in [0, num_bins)^D -> (y, log|det dy/dx~|) per example."""
  d = math.prod(x_tilde.shape[1:])
  if kind == "shift":
    y = x_tilde / num_bins - 0.5
    ld = jnp.full((x_tilde.shape[0],), -d * math.log(num_bins), jnp.float32)
    return y, ld
  if kind == "logit":
    p = logit_alpha + (1.0 - 2.0 * logit_alpha) * (x_tilde / num_bins)
    y = jnp.log(p) - jnp.log1p(-p)
    ld = sum_except_batch(math.log(1.0 - 2.0 * logit_alpha) - jnp.log(p) - jnp.log1p(-p)) - d * math.log(num_bins)
    return y, ld
  raise ValueError(f"unknown preprocessing {kind!r}; choose one of: {', '.join(PREPROCESSINGS)}")


def postprocess(y, kind: str, logit_alpha: float = 0.05, num_bins: int = NUM_BINS) -> jax.Array:
  """Inverse of `preprocess`: x~ in [0, num_bins], clipped."""
  if kind == "shift":
    u = y + 0.5
  elif kind == "logit":
    u = (jax.nn.sigmoid(y) - logit_alpha) / (1.0 - 2.0 * logit_alpha)
  else:
    raise ValueError(f"unknown preprocessing {kind!r}; choose one of: {', '.join(PREPROCESSINGS)}")
  return jnp.clip(u, 0.0, 1.0) * num_bins


def to_unit_pixels(x_tilde, num_bins: int = NUM_BINS) -> jax.Array:
  """Dequantised x~ -> pixel intensities in [0, 1]: the centre b + 1/2 of bin b maps to b / (num_bins - 1),
  the value the 8-bit image had (for num_bins = 256: x / 255)."""
  return jnp.clip((x_tilde - 0.5) / (num_bins - 1), 0.0, 1.0)


def standard_normal_log_prob(eps) -> jax.Array:
  """log N(eps; 0, I) summed per example, float32."""
  eps = jnp.asarray(eps, jnp.float32)
  return sum_except_batch(-0.5 * eps ** 2 - 0.5 * math.log(2 * math.pi))


def bits_per_dim(log_prob_y, log_det_preprocess, num_dims: int) -> jax.Array:
  """-(log p_Y(y) + log|det dy/dx~|) / (D ln 2), per example; see the module docstring."""
  return -(log_prob_y + log_det_preprocess) / (num_dims * math.log(2.0))
