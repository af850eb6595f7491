"""Gaussian diffusion maths (Ho et al. 2020): the forward process, and its posterior (the losses: jaxgen.diffusion.ddpm and .parameterisation).

Notation: `t` is an int array of timesteps in [0, T), where index t is the paper's step t+1.
  forward step     q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)   (note the square root on beta_t)
  marginal         q(x_t | x_0)     = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
  posterior        q(x_{t-1} | x_t, x_0) = N(coef1_t x_0 + coef2_t x_t, beta~_t I)
All of it runs in float32, whatever dtype the network computes in.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgen.diffusion.schedules import DiffusionSchedule


def extract(coef, t: jnp.ndarray, ndim: int) -> jnp.ndarray:
  """coef[t] reshaped to (B, 1, ..., 1) so that it broadcasts against an array of rank `ndim`."""
  out = jnp.take(jnp.asarray(coef, jnp.float32), t)
  return out.reshape(t.shape + (1,) * (ndim - t.ndim))


def q_step(schedule: DiffusionSchedule, x_prev, t, noise):
  """One forward step x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps."""
  beta = extract(schedule.betas, t, x_prev.ndim)
  return jnp.sqrt(1.0 - beta) * x_prev + jnp.sqrt(beta) * noise


def q_mean_variance(schedule: DiffusionSchedule, x0, t):
  """Mean, variance and log-variance of q(x_t | x_0)."""
  mean = extract(schedule.sqrt_alphas_cumprod, t, x0.ndim) * x0
  var = extract(1.0 - schedule.alphas_cumprod, t, x0.ndim)
  return mean, var, jnp.log(var)


def q_sample(schedule: DiffusionSchedule, x0, t, noise):
  """Draw x_t ~ q(x_t | x_0) in closed form: sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
  return (extract(schedule.sqrt_alphas_cumprod, t, x0.ndim) * x0
          + extract(schedule.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise)


def q_posterior_mean_variance(schedule: DiffusionSchedule, x0, xt, t):
  """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x_0)."""
  mean = (extract(schedule.posterior_mean_coef1, t, xt.ndim) * x0
          + extract(schedule.posterior_mean_coef2, t, xt.ndim) * xt)
  var = extract(schedule.posterior_variance, t, xt.ndim)
  log_var = extract(schedule.posterior_log_variance_clipped, t, xt.ndim)
  return mean, var, log_var


def predict_x0_from_eps(schedule: DiffusionSchedule, xt, t, eps):
  """Invert q_sample: x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)."""
  return (extract(schedule.sqrt_recip_alphas_cumprod, t, xt.ndim) * xt
          - extract(schedule.sqrt_recipm1_alphas_cumprod, t, xt.ndim) * eps)
