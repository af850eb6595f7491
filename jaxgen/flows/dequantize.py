r"""Dequantisation, the preprocessing bijections of RealNVP and Glow, and bits per dimension.

8-bit data x in {0, ..., 255}^D are dequantised uniformly: x~ = x + u, u ~ U[0, 1)^D, so x~ lies in [0, 256)^D.
A flow density p_Y on the preprocessed y = g(x~) gives the continuous density
  log p(x~) = log p_Y(g(x~)) + log|det dg/dx~|
and, by Jensen (Theis et al. 2016), -log P(x) <= E_u[-log p(x + u)] for the discrete data. We report

  bits/dim = -( log p_Y(y) + log|det dg/dx~| ) / (D ln 2),

averaged over examples, with D = H*W*C and the preprocessing g (its Jacobian is part of the likelihood):
  'shift' (Glow):    y = x~ / 256 - 1/2 in [-1/2, 1/2)            log|det| = -D ln 256
  'logit' (RealNVP): p = a + (1 - 2a) x~ / 256, y = logit(p)      log|det| = sum [ln(1 - 2a) - ln p - ln(1 - p)]
                                                                              - D ln 256        (a = logit_alpha)
Evaluation uses the same uniform dequantisation (never the mid-point), one fixed noise draw per example.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxgen.flows.bijector import sum_except_batch

PREPROCESSINGS = ("shift", "logit")
NUM_BINS = 256


def uniform_dequantize(images, rng) -> jax.Array:
  """uint8 images -> x~ = x + u in [0, 256), float32, u ~ U[0, 1)."""
  x = jnp.asarray(images).astype(jnp.float32)
  return x + jax.random.uniform(rng, x.shape, jnp.float32)


def preprocess(x_tilde, kind: str, logit_alpha: float = 0.05):
  """x~ in [0, 256)^D -> (y, log|det dy/dx~|) per example."""
  d = math.prod(x_tilde.shape[1:])
  if kind == "shift":
    y = x_tilde / NUM_BINS - 0.5
    ld = jnp.full((x_tilde.shape[0],), -d * math.log(NUM_BINS), jnp.float32)
    return y, ld
  if kind == "logit":
    p = logit_alpha + (1.0 - 2.0 * logit_alpha) * (x_tilde / NUM_BINS)
    y = jnp.log(p) - jnp.log1p(-p)
    ld = sum_except_batch(math.log(1.0 - 2.0 * logit_alpha) - jnp.log(p) - jnp.log1p(-p)) - d * math.log(NUM_BINS)
    return y, ld
  raise ValueError(f"unknown preprocessing {kind!r}; choose one of: {', '.join(PREPROCESSINGS)}")


def postprocess(y, kind: str, logit_alpha: float = 0.05) -> jax.Array:
  """Inverse of `preprocess`, returned in [0, 1] (x~ / 256), clipped."""
  if kind == "shift":
    x01 = y + 0.5
  elif kind == "logit":
    x01 = (jax.nn.sigmoid(y) - logit_alpha) / (1.0 - 2.0 * logit_alpha)
  else:
    raise ValueError(f"unknown preprocessing {kind!r}; choose one of: {', '.join(PREPROCESSINGS)}")
  return jnp.clip(x01, 0.0, 1.0)


def standard_normal_log_prob(eps) -> jax.Array:
  """log N(eps; 0, I) summed per example, float32."""
  eps = jnp.asarray(eps, jnp.float32)
  return sum_except_batch(-0.5 * eps ** 2 - 0.5 * math.log(2 * math.pi))


def bits_per_dim(log_prob_y, log_det_preprocess, num_dims: int) -> jax.Array:
  """-(log p_Y(y) + log|det dy/dx~|) / (D ln 2), per example; see the module docstring."""
  return -(log_prob_y + log_det_preprocess) / (num_dims * math.log(2.0))
