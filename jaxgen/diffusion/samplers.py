"""Samplers for Gaussian diffusion, each one compiled loop over a chosen subsequence of timesteps.

Every sampler takes the model as `model_fn(x_t, t) -> (eps, x0)` (float32; jaxgen.diffusion.parameterisation
builds it from a network that predicts eps, x0 or v, and classifier-free guidance wraps it), so
parameterisation and guidance compose with all of them.

  ancestral   x_{t-1} = mu_theta(x_t, t) + sigma_t z (Ho et al. 2020); on a subsequence tau_1 < ... < tau_S of
              the T steps, with the betas respaced so that alpha_bar is kept at the chosen steps (Nichol &
              Dhariwal 2021, section 4): beta'_i = 1 - alpha_bar_{tau_i} / alpha_bar_{tau_{i-1}}.
  ddim        Song et al. 2021, eq. 12: x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - s^2) eps + s z with
              s = eta sqrt((1 - a_prev) / (1 - a)) sqrt(1 - a / a_prev); eta = 0 is deterministic, eta = 1 is
              the DDPM posterior (fixed_small variance) on the subsequence.
  ddim_encode the deterministic DDIM map run forwards, x_0 -> x_T (DDIM inversion).

Variance choices of the ancestral sampler (Ho et al. 2020, section 3.2):
  'fixed_large': sigma_t^2 = beta_t (used for CIFAR-10 in the paper; at the last step beta~_1 as the official code)
  'fixed_small': sigma_t^2 = beta~_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)

Timestep index t runs over 0..T-1 (index t is the paper's step t+1). The key for the step at t is
fold_in(rng, t), so a sample does not depend on how the loop is compiled.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.diffusion import gaussian, parameterisation
from jaxgen.diffusion.schedules import DiffusionSchedule, diffusion_schedule_from_betas

from jaxgen.diffusion.options import SAMPLERS, SPACINGS, VARIANCES, timestep_subsequence  # noqa: F401


def respaced_schedule(schedule: DiffusionSchedule, timesteps: Sequence[int]) -> DiffusionSchedule:
  """The schedule of the chain that visits only `timesteps` (increasing): alpha_bar kept at those steps."""
  ts = np.asarray(timesteps)
  ac = _alpha_bar64(schedule)[ts]
  prev = np.append(1.0, ac[:-1])
  return diffusion_schedule_from_betas(1.0 - ac / prev)


def _alpha_bar64(schedule: DiffusionSchedule) -> np.ndarray:
  """alpha_bar in float64 from the stored betas (the stored float32 alpha_bar would lose the small betas)."""
  return np.cumprod(1.0 - np.asarray(schedule.betas, np.float64))


def from_eps(schedule: DiffusionSchedule, eps_fn: Callable) -> Callable:
  """eps_fn(x_t, t) -> eps  =>  model_fn(x_t, t) -> (eps, x0)."""
  def fn(xt, t):
    eps = eps_fn(xt, t).astype(jnp.float32)
    return eps, gaussian.predict_x0_from_eps(schedule, xt, t, eps)
  return fn


def _check_variance(variance: str) -> None:
  if variance not in VARIANCES:
    raise ValueError(f"unknown sampler variance {variance!r}; choose one of: {', '.join(VARIANCES)}")


def model_log_variance(schedule: DiffusionSchedule, variance: str) -> np.ndarray:
  """log sigma_t^2 for every t as a float32 host array."""
  _check_variance(variance)
  if variance == "fixed_large":
    post = np.asarray(schedule.posterior_variance, np.float64)
    betas = np.asarray(schedule.betas, np.float64)
    return np.log(np.append(post[1] if betas.size > 1 else betas[0], betas[1:])).astype(np.float32)
  return np.asarray(schedule.posterior_log_variance_clipped, np.float32)


def p_mean_variance(schedule: DiffusionSchedule, model_fn: Callable, xt, t, *, variance: str = "fixed_large",
                    clip_x0: bool = True, model_t=None):
  """Mean and log-variance of p_theta(x_{t-1} | x_t) and the predicted x_0.

  The mean is the posterior mean q(x_{t-1} | x_t, x0_hat) at the model's x0_hat; without clipping this equals
  (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(1 - beta_t). `t` indexes `schedule`; the model is
  called at `model_t` (default t): a respaced chain's index i is the original step tau_i.
  """
  _, x0 = model_fn(xt, t if model_t is None else model_t)
  if clip_x0:
    x0 = jnp.clip(x0, -1.0, 1.0)
  mean, _, _ = gaussian.q_posterior_mean_variance(schedule, x0, xt, t)
  log_var = gaussian.extract(model_log_variance(schedule, variance), t, xt.ndim)
  return mean, log_var, x0


def p_sample_step(schedule: DiffusionSchedule, model_fn: Callable, xt, t, rng, *, variance: str = "fixed_large",
                  clip_x0: bool = True, model_t=None):
  """One ancestral step x_t -> x_{t-1}; no noise is added at the last step (t == 0)."""
  mean, log_var, _ = p_mean_variance(schedule, model_fn, xt, t, variance=variance, clip_x0=clip_x0,
                                     model_t=model_t)
  noise = jax.random.normal(rng, xt.shape, jnp.float32)
  nonzero = (t != 0).astype(jnp.float32).reshape(t.shape + (1,) * (xt.ndim - 1))
  return mean + nonzero * jnp.exp(0.5 * log_var) * noise


def _timesteps(schedule: DiffusionSchedule, timesteps) -> np.ndarray:
  ts = np.arange(schedule.num_timesteps) if timesteps is None else np.asarray(timesteps, np.int64)
  if ts.ndim != 1 or ts.size == 0 or np.any(np.diff(ts) <= 0) or ts[0] < 0 or ts[-1] >= schedule.num_timesteps:
    raise ValueError(f"timesteps must increase strictly within [0, {schedule.num_timesteps}), got {ts.tolist()}")
  return ts


def ancestral_sample(schedule: DiffusionSchedule, model_fn: Callable, rng, shape, *, timesteps=None,
                     variance: str = "fixed_large", clip_x0: bool = True, x_T=None):
  """Ancestral sampling from x_T ~ N(0, I) over `timesteps` (default all T; else the respaced chain) in one
  `lax.fori_loop`; returns x_0 (float32)."""
  _check_variance(variance)
  ts = _timesteps(schedule, timesteps)
  chain = schedule if ts.size == schedule.num_timesteps else respaced_schedule(schedule, ts)
  ts_dev = jnp.asarray(ts, jnp.int32)
  init_rng, loop_rng = jax.random.split(rng)
  x = jax.random.normal(init_rng, shape, jnp.float32) if x_T is None else jnp.asarray(x_T, jnp.float32)

  def body(j, x):
    i = ts.size - 1 - j
    t_model = ts_dev[i]
    return p_sample_step(chain, model_fn, x, jnp.full((shape[0],), i, jnp.int32),
                         jax.random.fold_in(loop_rng, t_model), variance=variance, clip_x0=clip_x0,
                         model_t=jnp.full((shape[0],), t_model, jnp.int32))

  return jax.lax.fori_loop(0, ts.size, body, x)


def ddim_step_coefficients(schedule: DiffusionSchedule, timesteps, eta: float):
  """For each i: (sqrt(a_prev), sqrt(1 - a_prev - s^2), s) of the DDIM step tau_i -> tau_{i-1} (a_prev = 1 at
  the last step), as float32 host arrays."""
  ts = _timesteps(schedule, timesteps)
  a = _alpha_bar64(schedule)[ts]
  a_prev = np.append(1.0, a[:-1])
  s = eta * np.sqrt((1.0 - a_prev) / (1.0 - a)) * np.sqrt(1.0 - a / a_prev)
  f32 = lambda v: np.asarray(v, np.float32)
  return f32(np.sqrt(a_prev)), f32(np.sqrt(np.maximum(1.0 - a_prev - s ** 2, 0.0))), f32(s)


def ddim_sample(schedule: DiffusionSchedule, model_fn: Callable, rng, shape, *, timesteps=None, eta: float = 0.0,
                clip_x0: bool = True, x_T=None):
  """DDIM sampling over `timesteps` (default all T) in one `lax.fori_loop`; returns x_0 (float32). With
  `clip_x0`, eps is recomputed from the clipped x0 so that the two stay consistent."""
  if not eta >= 0:
    raise ValueError(f"eta={eta} must be >= 0 (0: deterministic DDIM, 1: the DDPM posterior)")
  ts = _timesteps(schedule, timesteps)
  c_x0, c_eps, c_noise = (jnp.asarray(v) for v in ddim_step_coefficients(schedule, ts, eta))
  ts_dev = jnp.asarray(ts, jnp.int32)
  if rng is None and (x_T is None or eta > 0):
    raise ValueError("ddim_sample needs an rng unless it starts from a given x_T with eta = 0")
  init_rng, loop_rng = jax.random.split(rng) if rng is not None else (None, None)
  x = jax.random.normal(init_rng, shape, jnp.float32) if x_T is None else jnp.asarray(x_T, jnp.float32)

  def body(j, x):
    i = ts.size - 1 - j
    t = jnp.full((shape[0],), ts_dev[i], jnp.int32)
    eps, x0 = model_fn(x, t)
    if clip_x0:
      x0 = jnp.clip(x0, -1.0, 1.0)
      eps = parameterisation.eps_from_x0(schedule, x, t, x0)
    out = c_x0[i] * x0 + c_eps[i] * eps
    if eta > 0:
      out = out + c_noise[i] * jax.random.normal(jax.random.fold_in(loop_rng, ts_dev[i]), shape, jnp.float32)
    return out

  return jax.lax.fori_loop(0, ts.size, body, x)


def ddim_encode(schedule: DiffusionSchedule, model_fn: Callable, x0, *, timesteps=None):
  """DDIM inversion: run the deterministic DDIM map backwards, from the data x_0 up through `timesteps` to x_T.

  The decoding step tau_i -> tau_{i-1} is x_{i-1} = sqrt(a_{i-1}) x0_hat + sqrt(1 - a_{i-1}) eps with
  x0_hat = (x_i - sqrt(1 - a_i) eps) / sqrt(a_i) and eps = eps_theta(x_i, tau_i); it is inverted exactly if
  eps_theta(x_i, tau_i) is replaced by eps_theta(x_{i-1}, tau_i) (the usual approximation: x_i is what we are
  solving for). Decoding the result with `ddim_sample(..., eta=0, clip_x0=False, x_T=...)` on the same
  timesteps reconstructs x_0 up to that approximation (`reconstruction_error`); no clipping here."""
  ts = _timesteps(schedule, timesteps)
  ac = _alpha_bar64(schedule)[ts]
  a_cur = jnp.asarray(np.sqrt(np.append(1.0, ac[:-1])), jnp.float32)   # the level x is at before step i
  s_cur = jnp.asarray(np.sqrt(1.0 - np.append(1.0, ac[:-1])), jnp.float32)
  a_next = jnp.asarray(np.sqrt(ac), jnp.float32)
  s_next = jnp.asarray(np.sqrt(1.0 - ac), jnp.float32)
  ts_dev = jnp.asarray(ts, jnp.int32)
  x0 = jnp.asarray(x0, jnp.float32)

  def body(i, x):
    eps, _ = model_fn(x, jnp.full((x0.shape[0],), ts_dev[i], jnp.int32))
    x0_hat = (x - s_cur[i] * eps) / a_cur[i]
    return a_next[i] * x0_hat + s_next[i] * eps

  return jax.lax.fori_loop(0, ts.size, body, x0)


def reconstruction_error(x0, reconstruction) -> jnp.ndarray:
  """Root mean squared error per example between x_0 and its DDIM encode-decode reconstruction."""
  axes = tuple(range(1, jnp.ndim(x0)))
  return jnp.sqrt(jnp.mean(jnp.square(jnp.asarray(reconstruction) - jnp.asarray(x0)), axis=axes))


def sample(schedule: DiffusionSchedule, model_fn: Callable, rng, shape, *, sampler: str = "ancestral",
           timesteps: Optional[Sequence[int]] = None, eta: float = 0.0, variance: str = "fixed_large",
           clip_x0: bool = True):
  """Dispatch to the named sampler ('ancestral' uses `variance`; 'ddim' uses `eta`)."""
  if sampler == "ancestral":
    return ancestral_sample(schedule, model_fn, rng, shape, timesteps=timesteps, variance=variance, clip_x0=clip_x0)
  if sampler == "ddim":
    return ddim_sample(schedule, model_fn, rng, shape, timesteps=timesteps, eta=eta, clip_x0=clip_x0)
  raise ValueError(f"sampler={sampler!r}; choose one of: {', '.join(SAMPLERS)}")
