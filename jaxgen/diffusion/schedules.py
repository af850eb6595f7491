"""Noise schedules for discrete-time Gaussian diffusion.

A schedule is a sequence of betas beta_1..beta_T. Everything derived from it (alpha_bar_t, the posterior
coefficients, ...) is computed in float64 with NumPy and then stored as float32 arrays, so that the
products over up to T=1000 steps carry no float32 round-off into training or sampling.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxgen.diffusion.options import check_num_timesteps

SCHEDULES = ("linear", "cosine")


def linear_beta_schedule(num_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
  """Ho et al. 2020: betas linear from beta_start to beta_end (the paper: 1e-4 -> 0.02 with T=1000).

  The endpoints are given for T=1000; for other T they are kept as is (the paper's convention).
  """
  return np.linspace(beta_start, beta_end, num_timesteps, dtype=np.float64)


def cosine_beta_schedule(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
  """Nichol & Dhariwal 2021: alpha_bar(t) = cos^2(((t/T + s) / (1 + s)) * pi/2), betas clipped at max_beta."""
  steps = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
  alpha_bar = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
  betas = 1.0 - alpha_bar[1:] / alpha_bar[:-1]
  return np.clip(betas, 0.0, max_beta)


def make_betas(name: str, num_timesteps: int, **kwargs) -> np.ndarray:
  if name == "linear":
    return linear_beta_schedule(num_timesteps, **kwargs)
  if name == "cosine":
    return cosine_beta_schedule(num_timesteps, **kwargs)
  raise ValueError(f"unknown beta schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")


@dataclasses.dataclass(frozen=True)
class DiffusionSchedule:
  """Per-timestep coefficients of q(x_t | x_0) and q(x_{t-1} | x_t, x_0), indexed by t = 0..T-1.

  Index t here is the paper's step t+1: betas[0] = beta_1. Arrays are float32 NumPy arrays (host constants;
  no JAX backend is touched when a schedule is built, so it can be made before `jax.distributed.initialize`).
  """
  betas: np.ndarray
  alphas_cumprod: np.ndarray            # alpha_bar_t = prod_{s<=t} (1 - beta_s)
  alphas_cumprod_prev: np.ndarray       # alpha_bar_{t-1}, with alpha_bar_0 = 1
  sqrt_alphas_cumprod: np.ndarray
  sqrt_one_minus_alphas_cumprod: np.ndarray
  sqrt_recip_alphas_cumprod: np.ndarray     # 1 / sqrt(alpha_bar_t)
  sqrt_recipm1_alphas_cumprod: np.ndarray   # sqrt(1 / alpha_bar_t - 1)
  posterior_variance: np.ndarray        # beta~_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)
  posterior_log_variance_clipped: np.ndarray  # log beta~_t, with t=0 replaced by beta~_1 (it is 0 there)
  posterior_mean_coef1: np.ndarray      # coefficient of x_0 in the posterior mean
  posterior_mean_coef2: np.ndarray      # coefficient of x_t in the posterior mean

  @property
  def num_timesteps(self) -> int:
    return int(self.betas.shape[0])


def diffusion_schedule_from_betas(betas: np.ndarray) -> DiffusionSchedule:
  betas = np.asarray(betas, dtype=np.float64)
  if betas.ndim != 1 or betas.size < 2:
    raise ValueError(f"betas must be a 1-D array of at least 2 steps (the log variance at t=0 is clipped to the "
                     f"posterior variance at t=1), got shape {betas.shape}")
  if not (np.all(betas > 0) and np.all(betas < 1)):
    raise ValueError(f"betas must lie in (0, 1), got min {betas.min()} and max {betas.max()}")
  alphas = 1.0 - betas
  ac = np.cumprod(alphas)
  ac_prev = np.append(1.0, ac[:-1])
  post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
  f32 = lambda a: np.asarray(a, dtype=np.float32)
  return DiffusionSchedule(
      betas=f32(betas),
      alphas_cumprod=f32(ac),
      alphas_cumprod_prev=f32(ac_prev),
      sqrt_alphas_cumprod=f32(np.sqrt(ac)),
      sqrt_one_minus_alphas_cumprod=f32(np.sqrt(1.0 - ac)),
      sqrt_recip_alphas_cumprod=f32(np.sqrt(1.0 / ac)),
      sqrt_recipm1_alphas_cumprod=f32(np.sqrt(1.0 / ac - 1.0)),
      posterior_variance=f32(post_var),
      posterior_log_variance_clipped=f32(np.log(np.append(post_var[1], post_var[1:]))),
      posterior_mean_coef1=f32(betas * np.sqrt(ac_prev) / (1.0 - ac)),
      posterior_mean_coef2=f32((1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac)),
  )


def make_schedule(name: str, num_timesteps: int, **kwargs) -> DiffusionSchedule:
  """E.g. `make_schedule('linear', 1000)` — the DDPM paper's schedule; num_timesteps >= 2
  (jaxgen.diffusion.options.check_num_timesteps)."""
  check_num_timesteps(num_timesteps)
  return diffusion_schedule_from_betas(make_betas(name, num_timesteps, **kwargs))
