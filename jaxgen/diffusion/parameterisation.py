"""What the network predicts (epsilon, x_0 or v) and how its loss is weighted, in one place.

With alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t) and x_t = alpha_t x_0 + sigma_t eps:
  'eps'  the noise eps (Ho et al. 2020)
  'x0'   the clean image x_0
  'v'    v = alpha_t eps - sigma_t x_0 (Salimans & Ho 2022), so x_0 = alpha_t x_t - sigma_t v and
         eps = sigma_t x_t + alpha_t v
Every sampler sees the network as model_fn(x_t, t) -> (eps, x0) whatever it predicts (`model_fn` below), so
parameterisation and guidance compose with every sampler.

Loss weightings, all as a weight lambda(t) on the x_0 error ||x_0 - x0_hat||^2, which for each target equals
the target's own squared error times a factor (eps: SNR_t; v: SNR_t + 1; x_0: 1), SNR_t = alpha_t^2 / sigma_t^2:
  'simple'   the plain mean squared error of whatever the network predicts (L_simple for 'eps')
  'snr'      lambda = SNR_t: the eps error for every target (the weighting of L_simple under 'eps')
  'min_snr'  lambda = min(SNR_t, gamma) (Hang et al. 2023, "min-SNR-gamma"; gamma = 5 in the paper)
"""
from __future__ import annotations

from typing import Callable, Tuple

import jax.numpy as jnp
import numpy as np

from jaxgen.diffusion.gaussian import extract
from jaxgen.diffusion.schedules import DiffusionSchedule

from jaxgen.diffusion.options import PREDICTIONS, WEIGHTINGS  # noqa: F401


def check_prediction(prediction: str) -> None:
  if prediction not in PREDICTIONS:
    raise ValueError(f"prediction={prediction!r}; choose one of: {', '.join(PREDICTIONS)}")


def _alpha_sigma(schedule: DiffusionSchedule, t, ndim: int):
  return (extract(schedule.sqrt_alphas_cumprod, t, ndim), extract(schedule.sqrt_one_minus_alphas_cumprod, t, ndim))


def target(schedule: DiffusionSchedule, prediction: str, x0, noise, t):
  """What a network with this parameterisation should output for x_t = alpha_t x0 + sigma_t noise."""
  check_prediction(prediction)
  if prediction == "eps":
    return noise
  if prediction == "x0":
    return x0
  alpha, sigma = _alpha_sigma(schedule, t, x0.ndim)
  return alpha * noise - sigma * x0


def to_eps_x0(schedule: DiffusionSchedule, prediction: str, xt, t, output) -> Tuple[jnp.ndarray, jnp.ndarray]:
  """(eps, x0) implied by the network `output` at (x_t, t); float32."""
  check_prediction(prediction)
  output = output.astype(jnp.float32)
  alpha, sigma = _alpha_sigma(schedule, t, xt.ndim)
  if prediction == "eps":
    return output, (xt - sigma * output) / alpha
  if prediction == "x0":
    return (xt - alpha * output) / sigma, output
  return sigma * xt + alpha * output, alpha * xt - sigma * output


def eps_from_x0(schedule: DiffusionSchedule, xt, t, x0):
  """The eps for which x_t = alpha_t x0 + sigma_t eps (used after x0 is clipped)."""
  alpha, sigma = _alpha_sigma(schedule, t, xt.ndim)
  return (xt - alpha * x0) / sigma


def model_fn(schedule: DiffusionSchedule, prediction: str, network_fn: Callable) -> Callable:
  """network_fn(x_t, t) -> raw output  =>  model_fn(x_t, t) -> (eps, x0), the samplers' one signature."""
  check_prediction(prediction)
  return lambda xt, t: to_eps_x0(schedule, prediction, xt, t, network_fn(xt, t))


def snr(schedule: DiffusionSchedule) -> np.ndarray:
  """SNR_t = alpha_bar_t / (1 - alpha_bar_t) for every t, float64 on the host."""
  ac = np.asarray(schedule.alphas_cumprod, np.float64)
  return ac / (1.0 - ac)


def loss_weights(schedule: DiffusionSchedule, prediction: str, weighting: str, gamma: float = 5.0) -> np.ndarray:
  """Per-timestep factor on the mean squared error of the network's own target (float32, shape (T,))."""
  check_prediction(prediction)
  if weighting not in WEIGHTINGS:
    raise ValueError(f"loss_weighting={weighting!r}; choose one of: {', '.join(WEIGHTINGS)}")
  if weighting == "min_snr" and not gamma > 0:
    raise ValueError(f"min_snr_gamma={gamma} must be > 0")
  s = snr(schedule)
  if weighting == "simple":
    return np.ones_like(s, np.float32)
  lam = s if weighting == "snr" else np.minimum(s, gamma)        # weight on the x_0 error
  own_per_x0 = {"eps": s, "x0": np.ones_like(s), "v": s + 1.0}[prediction]
  return (lam / own_per_x0).astype(np.float32)
