"""Decoder likelihoods p(x | z) for 8-bit images, each with its bits/dim convention named.

Every decoder network outputs `num_params(name) * C` channels per pixel. Each likelihood turns uint8 pixels
into the network input and the target, scores the target (log p summed over pixels, float32, shape (B,)),
and gives a constant that converts that score into a bound on log P(x) of the 8-bit data:

  bernoulli  binarised pixels b ~ Bernoulli(x / 255) (dynamic binarisation in training, a fixed seed in eval);
             bits/dim are of the *binarised* data, not of 8-bit data.
  gaussian   a Gaussian with learned per-pixel variance on uniformly dequantised pixels
             y = 2 (x + u) / 256 - 1, u ~ U[0, 1); log P(x) >= E_u log p(y) - D log 128 (the density is on
             [-1, 1], whose bins have width 2 / 256).
  logistic   discretised logistic (Salimans et al. 2017, PixelCNN++, one component): the exact probability of
             each 8-bit value, bins of half-width 1 / 255 around x / 127.5 - 1, the edge bins open-ended.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

LIKELIHOODS = ("bernoulli", "gaussian", "logistic")
LOG_SCALE_MIN = -7.0          # soft floor of the learned log-scales (bins are e^-4.8 wide in [-1, 1])


def check_likelihood(name: str) -> None:
  if name not in LIKELIHOODS:
    raise ValueError(f"unknown decoder likelihood {name!r}; choose one of: {', '.join(LIKELIHOODS)}")


def num_params(name: str) -> int:
  check_likelihood(name)
  return 1 if name == "bernoulli" else 2


def log_prob_offset(name: str, num_dims: int) -> float:
  """The constant added to the summed log-likelihood to bound log P of the data (see the module doc)."""
  return -num_dims * math.log(128.0) if name == "gaussian" else 0.0


def prepare(name: str, images_uint8, rng, *, binarize_rng=None):
  """uint8 (B, H, W, C) -> (network input in [-1, 1], target). `rng` draws the binarisation or dequantisation."""
  x = jnp.asarray(images_uint8).astype(jnp.float32)
  if name == "bernoulli":
    b = jax.random.bernoulli(rng, x / 255.0).astype(jnp.float32)
    return 2.0 * b - 1.0, b
  if name == "gaussian":
    u = jax.random.uniform(rng, x.shape)
    return x / 127.5 - 1.0, 2.0 * (x + u) / 256.0 - 1.0
  if name == "logistic":
    return x / 127.5 - 1.0, x
  check_likelihood(name)


def _split(out):
  mean, raw = jnp.split(out.astype(jnp.float32), 2, axis=-1)
  return mean, LOG_SCALE_MIN + jax.nn.softplus(raw - LOG_SCALE_MIN)


def log_prob(name: str, out, target) -> jnp.ndarray:
  """log p(target | decoder output `out`), summed over all but the batch axis: (B,)."""
  if name == "bernoulli":
    logits = out.astype(jnp.float32)
    lp = target * jax.nn.log_sigmoid(logits) + (1.0 - target) * jax.nn.log_sigmoid(-logits)
  elif name == "gaussian":
    mean, log_scale = _split(out)
    lp = -0.5 * jnp.square((target - mean) * jnp.exp(-log_scale)) - log_scale - 0.5 * math.log(2 * math.pi)
  elif name == "logistic":
    lp = discretized_logistic_log_prob(target, *_split(out))
  else:
    check_likelihood(name)
  return lp.reshape(lp.shape[0], -1).sum(-1)


def discretized_logistic_log_prob(pixels, mean, log_scale) -> jnp.ndarray:
  """log P(pixel) per element, pixels in 0..255, mean in [-1, 1] space (PixelCNN++ with one component)."""
  x = pixels / 127.5 - 1.0
  inv_s = jnp.exp(-log_scale)
  plus, minus = inv_s * (x - mean + 1.0 / 255.0), inv_s * (x - mean - 1.0 / 255.0)
  log_cdf_plus = jax.nn.log_sigmoid(plus)                 # pixel 0: P(X < upper edge)
  log_one_minus_cdf_min = jax.nn.log_sigmoid(-minus)      # pixel 255: P(X > lower edge)
  # sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - e^(b - a)): stable in both tails, no fallback needed.
  log_mid = log_cdf_plus + log_one_minus_cdf_min + jnp.log(-jnp.expm1(minus - plus))
  return jnp.where(pixels <= 0, log_cdf_plus, jnp.where(pixels >= 255, log_one_minus_cdf_min, log_mid))


def decoder_mean(name: str, out) -> jnp.ndarray:
  """The decoder's mean image in [-1, 1] (what sample and reconstruction grids show)."""
  if name == "bernoulli":
    return 2.0 * jax.nn.sigmoid(out.astype(jnp.float32)) - 1.0
  return jnp.clip(_split(out)[0], -1.0, 1.0)
