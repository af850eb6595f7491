"""Ancestral (DDPM) sampling: x_{t-1} = mu_theta(x_t, t) + sigma_t z, the whole loop inside one compiled call.

Variance choices (Ho et al. 2020, section 3.2), both valid for the reverse process:
  'fixed_large': sigma_t^2 = beta_t (used for CIFAR-10 in the paper; at the last step beta~_1 as the official code)
  'fixed_small': sigma_t^2 = beta~_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.diffusion import gaussian
from jaxgen.diffusion.schedules import DiffusionSchedule

VARIANCES = ("fixed_large", "fixed_small")


def model_log_variance(schedule: DiffusionSchedule, variance: str) -> np.ndarray:
  """log sigma_t^2 for every t as a float32 host array."""
  if variance == "fixed_large":
    post = np.asarray(schedule.posterior_variance, np.float64)
    betas = np.asarray(schedule.betas, np.float64)
    return np.log(np.append(post[1] if betas.size > 1 else betas[0], betas[1:])).astype(np.float32)
  if variance == "fixed_small":
    return np.asarray(schedule.posterior_log_variance_clipped, np.float32)
  raise ValueError(f"unknown sampler variance {variance!r}; choose one of: {', '.join(VARIANCES)}")


def p_mean_variance(schedule: DiffusionSchedule, eps_fn: Callable, xt, t, *, variance: str = "fixed_large",
                    clip_x0: bool = True):
  """Mean and log-variance of p_theta(x_{t-1} | x_t) and the predicted x_0.

  The mean is the posterior mean q(x_{t-1} | x_t, x0_hat) at x0_hat = predict_x0(x_t, eps_theta); without
  clipping this equals (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(1 - beta_t).
  """
  eps = eps_fn(xt, t).astype(jnp.float32)
  x0 = gaussian.predict_x0_from_eps(schedule, xt, t, eps)
  if clip_x0:
    x0 = jnp.clip(x0, -1.0, 1.0)
  mean, _, _ = gaussian.q_posterior_mean_variance(schedule, x0, xt, t)
  log_var = gaussian.extract(model_log_variance(schedule, variance), t, xt.ndim)
  return mean, log_var, x0


def p_sample_step(schedule: DiffusionSchedule, eps_fn: Callable, xt, t, rng, *, variance: str = "fixed_large",
                  clip_x0: bool = True):
  """One ancestral step x_t -> x_{t-1}; no noise is added at the last step (t == 0)."""
  mean, log_var, _ = p_mean_variance(schedule, eps_fn, xt, t, variance=variance, clip_x0=clip_x0)
  noise = jax.random.normal(rng, xt.shape, jnp.float32)
  nonzero = (t != 0).astype(jnp.float32).reshape(t.shape + (1,) * (xt.ndim - 1))
  return mean + nonzero * jnp.exp(0.5 * log_var) * noise


def ancestral_sample(schedule: DiffusionSchedule, eps_fn: Callable, rng, shape, *, variance: str = "fixed_large",
                     clip_x0: bool = True):
  """Run all T reverse steps from x_T ~ N(0, I) in one `lax.fori_loop`; returns x_0 (float32).

  The key for step t is fold_in(rng, t), so a sample does not depend on how the loop is compiled.
  """
  if variance not in VARIANCES:
    raise ValueError(f"unknown sampler variance {variance!r}; choose one of: {', '.join(VARIANCES)}")
  num_steps = schedule.num_timesteps
  init_rng, loop_rng = jax.random.split(rng)
  x = jax.random.normal(init_rng, shape, jnp.float32)

  def body(i, x):
    t_scalar = num_steps - 1 - i
    t = jnp.full((shape[0],), t_scalar, jnp.int32)
    return p_sample_step(schedule, eps_fn, x, t, jax.random.fold_in(loop_rng, t_scalar),
                         variance=variance, clip_x0=clip_x0)

  return jax.lax.fori_loop(0, num_steps, body, x)
