"""Schedules against independent float64 computations (closed forms, written here from the papers)."""
import math

import numpy as np
import pytest

from jaxgen.diffusion import schedules


def test_linear_endpoints_and_spacing():
  b = schedules.linear_beta_schedule(1000)
  assert b.shape == (1000,) and b.dtype == np.float64
  assert b[0] == pytest.approx(1e-4) and b[-1] == pytest.approx(0.02)
  np.testing.assert_allclose(np.diff(b), (0.02 - 1e-4) / 999, rtol=1e-9)


def test_cosine_matches_alpha_bar_closed_form():
  T, s = 1000, 0.008
  b = schedules.cosine_beta_schedule(T)
  f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
  alpha_bar = np.array([f(t) / f(0) for t in range(1, T + 1)])
  unclipped = b < 0.999
  np.testing.assert_allclose(np.cumprod(1 - b)[unclipped], alpha_bar[unclipped], rtol=1e-9)
  assert b.max() <= 0.999 and b.min() > 0


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_derived_coefficients_against_float64_loop(name):
  T = 1000
  sched = schedules.make_schedule(name, T)
  betas = schedules.make_betas(name, T)
  # An independent computation: explicit loops in Python floats (float64).
  ab, ab_prev, post_var, c1, c2 = [], [], [], [], []
  prod = 1.0
  for t in range(T):
    prev = prod
    prod *= 1.0 - betas[t]
    ab.append(prod)
    ab_prev.append(prev)
    post_var.append(betas[t] * (1 - prev) / (1 - prod))
    c1.append(math.sqrt(prev) * betas[t] / (1 - prod))
    c2.append(math.sqrt(1 - betas[t]) * (1 - prev) / (1 - prod))
  for got, want in [(sched.alphas_cumprod, ab), (sched.alphas_cumprod_prev, ab_prev),
                    (sched.sqrt_alphas_cumprod, np.sqrt(ab)), (sched.sqrt_one_minus_alphas_cumprod, np.sqrt(1 - np.array(ab))),
                    (sched.sqrt_recip_alphas_cumprod, 1 / np.sqrt(ab)),
                    (sched.sqrt_recipm1_alphas_cumprod, np.sqrt(1 / np.array(ab) - 1)),
                    (sched.posterior_variance, post_var), (sched.posterior_mean_coef1, c1),
                    (sched.posterior_mean_coef2, c2)]:
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.array(want), rtol=2e-6, atol=1e-12)
  assert sched.posterior_variance[0] == 0.0
  np.testing.assert_allclose(sched.posterior_log_variance_clipped[0], math.log(post_var[1]), rtol=1e-6)


def test_paper_linear_schedule_end_signal():
  # Ho et al.: with the linear schedule alpha_bar_T ~ 4e-5 (x_T is nearly pure noise).
  sched = schedules.make_schedule("linear", 1000)
  assert 1e-5 < sched.alphas_cumprod[-1] < 1e-4


def test_bad_schedule_inputs():
  with pytest.raises(ValueError, match="unknown beta schedule 'quadratic'"):
    schedules.make_schedule("quadratic", 10)
  with pytest.raises(ValueError, match="num_timesteps"):
    schedules.make_schedule("linear", 0)
  with pytest.raises(ValueError, match=r"\(0, 1\)"):
    schedules.diffusion_schedule_from_betas(np.array([0.1, 1.5]))


def test_one_timestep_is_refused_with_the_field_named():
  # T=1 has no posterior variance at t=1 to clip t=0's to: refused before any IndexError, at validation time
  with pytest.raises(ValueError, match=r"diffusion.num_timesteps=1 must be an integer >= 2"):
    schedules.make_schedule("linear", 1)
  with pytest.raises(ValueError, match="at least 2 steps"):
    schedules.diffusion_schedule_from_betas(np.array([0.1]))
  from experiments import ddpm_cifar
  from jaxgen.diffusion.build import validate_ddpm_config
  config = ddpm_cifar.get_config("smoke")
  config.diffusion.num_timesteps = 1
  with pytest.raises(ValueError, match=r"diffusion.num_timesteps=1 must be an integer >= 2"):
    validate_ddpm_config(config)
  config.diffusion.num_timesteps = 2
  validate_ddpm_config(config)
  assert schedules.make_schedule("linear", 2).num_timesteps == 2
