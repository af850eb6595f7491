"""The variational bound on -log p(x_0) of a diffusion model (Ho et al. 2020, eq. 5 and section 3.3), in nats.

  L = L_T + sum_{t=2}^{T} L_{t-1} + L_0
  L_T     = KL(q(x_T | x_0) || N(0, I))                              (the prior term; no parameters)
  L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))      x_t ~ q(x_t | x_0), one draw per t
  L_0     = -log p_theta(x_0 | x_1)                                  the discretised Gaussian decoder

For 8-bit images scaled to [-1, 1] (bins=256) the decoder gives each pixel the Gaussian mass of its bin of
width 2/255 (the outermost bins reach to -inf and +inf), so the bound is on the discrete data and bits/dim are
L / (D ln 2) with no change-of-variables term. For continuous data (bins=0: 2-D points, latents, embeddings)
the decoder is the Gaussian density N(x_0; mu_theta(x_1, 1), sigma_1^2), and L bounds -log p(x_0) of a density
in nats. In the paper's index convention the sum has T terms after L_T;
here timestep index t = 0..T-1 is the paper's t+1, so index 0 is the decoder and indices 1..T-1 are the KLs.
"""
from __future__ import annotations

import math
from typing import Callable, Dict

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

from jaxgen.diffusion import gaussian, samplers
from jaxgen.diffusion.schedules import DiffusionSchedule


def normal_kl(mean1, logvar1, mean2, logvar2):
  """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) elementwise."""
  return 0.5 * (-1.0 + logvar2 - logvar1 + jnp.exp(logvar1 - logvar2) + jnp.square(mean1 - mean2) * jnp.exp(-logvar2))


def _log_mass(a, b):
  """log(Phi(b) - Phi(a)) for a < b, without cancellation: on the side of 0 where both are small."""
  flip = a > 0                                       # Phi(b) - Phi(a) = Phi(-a) - Phi(-b)
  lo, hi = jnp.where(flip, -b, a), jnp.where(flip, -a, b)
  log_hi, log_lo = log_ndtr(hi), log_ndtr(lo)
  return log_hi + jnp.log1p(-jnp.exp(jnp.minimum(log_lo - log_hi, -1e-30)))


def discretized_gaussian_log_likelihood(x, mean, log_scale, *, bins: int = 256):
  """log P(x) elementwise for x on the grid of `bins` values in [-1, 1] under N(mean, e^(2 log_scale))
  discretised to bins of width 2/(bins-1); the first and last bins extend to -inf and +inf.

  The same decoder as Ho et al.'s code, but with exact tail masses (log_ndtr) where theirs clamps each bin's
  probability at 1e-12 (27.6 nats): bins far from the mean cost what they should."""
  half = 1.0 / (bins - 1)
  inv = jnp.exp(-log_scale)
  upper = (x - mean + half) * inv
  lower = (x - mean - half) * inv
  first, last = x < -1.0 + half, x > 1.0 - half
  return jnp.where(first, log_ndtr(upper), jnp.where(last, log_ndtr(-lower), _log_mass(lower, upper)))


def prior_kl(schedule: DiffusionSchedule, x0):
  """L_T per example (nats): KL(q(x_T | x_0) || N(0, I)) summed over dimensions."""
  t = jnp.full((x0.shape[0],), schedule.num_timesteps - 1, jnp.int32)
  mean, _, log_var = gaussian.q_mean_variance(schedule, x0, t)
  return jnp.sum(normal_kl(mean, log_var, 0.0, 0.0), axis=tuple(range(1, x0.ndim)))


def gaussian_log_density(x, mean, log_var):
  """log N(x; mean, e^log_var) elementwise."""
  return -0.5 * (math.log(2 * math.pi) + log_var + jnp.square(x - mean) * jnp.exp(-log_var))


def vlb_term(schedule: DiffusionSchedule, model_fn: Callable, x0, t, noise, *, variance: str = "fixed_large",
             clip_x0: bool = False, bins: int = 256):
  """L_{t} per example (nats) at timestep index t (B,): the KL term for t >= 1, the decoder NLL for t == 0
  (discretised to `bins` levels, or a density when bins == 0)."""
  xt = gaussian.q_sample(schedule, x0, t, noise)
  true_mean, _, true_log_var = gaussian.q_posterior_mean_variance(schedule, x0, xt, t)
  mean, log_var, _ = samplers.p_mean_variance(schedule, model_fn, xt, t, variance=variance, clip_x0=clip_x0)
  axes = tuple(range(1, x0.ndim))
  kl = jnp.sum(normal_kl(true_mean, true_log_var, mean, log_var), axis=axes)
  if bins:
    nll = -jnp.sum(discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var, bins=bins), axis=axes)
  else:
    nll = -jnp.sum(gaussian_log_density(x0, mean, log_var), axis=axes)
  return jnp.where(t == 0, nll, kl)


def vlb_terms(schedule: DiffusionSchedule, model_fn: Callable, x0, rng, *, variance: str = "fixed_large",
              clip_x0: bool = False, bins: int = 256) -> Dict[str, jnp.ndarray]:
  """Every term of the bound per example, one `lax.fori_loop` over all T timesteps (one noise draw each,
  fold_in(rng, t)); returns nats per example: 'prior' (L_T), 'kl' (sum of L_1..L_{T-1}), 'decoder' (L_0),
  'total', and 'bits_per_dim' (total / (D ln 2))."""
  x0 = jnp.asarray(x0, jnp.float32)
  b = x0.shape[0]

  def body(i, acc):
    t = jnp.full((b,), i, jnp.int32)
    term = vlb_term(schedule, model_fn, x0, t, jax.random.normal(jax.random.fold_in(rng, i), x0.shape),
                    variance=variance, clip_x0=clip_x0, bins=bins)
    return acc.at[jnp.minimum(i, 1)].add(term)

  acc = jax.lax.fori_loop(0, schedule.num_timesteps, body, jnp.zeros((2, b), jnp.float32))
  decoder, kl = acc[0], acc[1]
  prior = prior_kl(schedule, x0)
  total = prior + kl + decoder
  dims = math.prod(x0.shape[1:])
  return {"prior": prior, "kl": kl, "decoder": decoder, "total": total,
          "bits_per_dim": total / (dims * math.log(2.0))}
