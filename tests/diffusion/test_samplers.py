"""Samplers on subsequences, DDIM and its inversion, against closed forms: Gaussian data whose exact denoiser is
known, the respaced posterior computed in float64, and exact algebraic inverses."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.diffusion import gaussian, samplers, schedules

SCHED = schedules.make_schedule("linear", 1000)
MU, S = 0.3, 0.5                                  # the data: x0 ~ N(MU, S^2) in every dimension


def gaussian_model(sched):
  """The exact (eps, x0) = E[. | x_t] for x0 ~ N(MU, S^2): both are linear in x_t."""
  def fn(xt, t):
    a = gaussian.extract(sched.sqrt_alphas_cumprod, t, xt.ndim)
    s = gaussian.extract(sched.sqrt_one_minus_alphas_cumprod, t, xt.ndim)
    r = (xt - a * MU) / (a * a * S * S + s * s)
    return s * r, MU + a * S * S * r
  return fn


def test_timestep_subsequences():
  even = samplers.timestep_subsequence(1000, 50, "even")
  quad = samplers.timestep_subsequence(1000, 50, "quadratic")
  for ts in (even, quad):
    assert len(ts) == 50 and ts[0] == 0 and ts[-1] == 999 and np.all(np.diff(ts) > 0)
  np.testing.assert_allclose(np.diff(even), 999 / 49, atol=1)
  assert quad[10] < even[10] and np.diff(quad)[0] < np.diff(quad)[-1]      # denser near the data
  np.testing.assert_array_equal(samplers.timestep_subsequence(1000, 0), np.arange(1000))
  dense = samplers.timestep_subsequence(100, 90, "quadratic")              # collisions pushed apart
  assert len(dense) == 90 and np.all(np.diff(dense) > 0) and dense[-1] == 99
  with pytest.raises(ValueError, match="steps=1001 must lie in"):
    samplers.timestep_subsequence(1000, 1001)
  with pytest.raises(ValueError, match="spacing='log'; choose one of: even, quadratic"):
    samplers.timestep_subsequence(1000, 10, "log")


def test_respaced_schedule_keeps_alpha_bar_at_the_chosen_steps():
  ts = samplers.timestep_subsequence(1000, 20)
  chain = samplers.respaced_schedule(SCHED, ts)
  np.testing.assert_allclose(chain.alphas_cumprod, SCHED.alphas_cumprod[ts], rtol=1e-5)
  full = samplers.respaced_schedule(SCHED, np.arange(1000))
  np.testing.assert_allclose(full.betas, SCHED.betas, rtol=1e-4, atol=1e-9)


def test_ddim_with_eta_one_is_the_respaced_ddpm_posterior():
  """Song et al.: eta = 1 gives q(x_{tau_{i-1}} | x_{tau_i}, x0), i.e. the posterior of the respaced chain,
  computed here in float64 from alpha_bar alone."""
  ts = samplers.timestep_subsequence(1000, 25, "quadratic")
  c_x0, c_eps, c_noise = samplers.ddim_step_coefficients(SCHED, ts, eta=1.0)
  ab = np.cumprod(1 - schedules.linear_beta_schedule(1000))[ts]
  prev = np.append(1.0, ab[:-1])
  beta = 1 - ab / prev
  rng = np.random.default_rng(0)
  x0, xt = rng.normal(size=(2, ts.size))
  eps = (xt - np.sqrt(ab) * x0) / np.sqrt(1 - ab)
  post_mean = beta * np.sqrt(prev) / (1 - ab) * x0 + (1 - prev) * np.sqrt(1 - beta) / (1 - ab) * xt
  post_var = beta * (1 - prev) / (1 - ab)
  np.testing.assert_allclose(c_x0 * x0 + c_eps * eps, post_mean, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(c_noise ** 2, post_var, rtol=1e-4, atol=1e-9)
  # eta = 0: no noise at all.
  assert np.all(samplers.ddim_step_coefficients(SCHED, ts, eta=0.0)[2] == 0)


def _linear_chain_moments(ts, eta=None, variance=None):
  """Mean and variance of the sampler's output for the Gaussian model, in float64 by the recursion
  x_prev = k x + m + sd z (every step is affine in x), starting from N(0, 1): an exact oracle."""
  ab_all = np.cumprod(1 - schedules.linear_beta_schedule(1000))
  ab = ab_all[ts]
  prev = np.append(1.0, ab[:-1])
  mean, var = 0.0, 1.0
  for i in reversed(range(len(ts))):
    a, s = np.sqrt(ab[i]), np.sqrt(1 - ab[i])
    v = a * a * S * S + s * s
    # x0_hat = MU + a S^2 (x - a MU) / v = g x + h; eps_hat = s (x - a MU) / v = e x + f
    g, h = a * S * S / v, MU - a * a * S * S * MU / v
    e, f = s / v, -s * a * MU / v
    if eta is not None:                        # DDIM
      sd = eta * np.sqrt((1 - prev[i]) / (1 - ab[i])) * np.sqrt(1 - ab[i] / prev[i])
      c = np.sqrt(1 - prev[i] - sd ** 2)
      k, m = np.sqrt(prev[i]) * g + c * e, np.sqrt(prev[i]) * h + c * f
    else:                                      # ancestral on the respaced chain
      beta = 1 - ab[i] / prev[i]
      c1, c2 = beta * np.sqrt(prev[i]) / (1 - ab[i]), (1 - prev[i]) * np.sqrt(1 - beta) / (1 - ab[i])
      k, m = c1 * g + c2, c1 * h
      sd = 0.0 if i == 0 else np.sqrt(beta * (1 - prev[i]) / (1 - ab[i]) if variance == "fixed_small" else beta)
    mean, var = k * mean + m, k * k * var + sd * sd
  return mean, var


@pytest.mark.parametrize("sampler,kw", [("ddim", dict(eta=0.0)), ("ddim", dict(eta=1.0)),
                                        ("ancestral", dict(variance="fixed_large"))])
def test_50_step_samplers_match_the_exact_output_distribution(sampler, kw):
  ts = samplers.timestep_subsequence(1000, 50)
  run = jax.jit(lambda rng: samplers.sample(SCHED, gaussian_model(SCHED), rng, (8000, 2), sampler=sampler,
                                            timesteps=ts, clip_x0=False, **kw))
  x = np.asarray(run(jax.random.PRNGKey(1)), np.float64)
  mean, var = _linear_chain_moments(ts, eta=kw.get("eta"), variance=kw.get("variance"))
  assert abs(x.mean() - mean) < 0.012 and abs(x.std() - np.sqrt(var)) < 0.012, (x.mean(), x.std(), mean, var)
  if sampler == "ddim" and kw["eta"] == 0:
    # The deterministic sampler (an ODE solver) lands near the data distribution in 50 steps (std 0.47 for 0.5).
    assert abs(np.sqrt(var) - S) < 0.04 and abs(mean - MU) < 0.01


def test_ddim_eta_one_equals_ancestral_fixed_small_on_the_same_subsequence():
  ts = samplers.timestep_subsequence(1000, 30, "quadratic")
  model = gaussian_model(SCHED)
  a = samplers.ddim_sample(SCHED, model, jax.random.PRNGKey(4), (64, 2), timesteps=ts, eta=1.0, clip_x0=False)
  b = samplers.ancestral_sample(SCHED, model, jax.random.PRNGKey(4), (64, 2), timesteps=ts,
                                variance="fixed_small", clip_x0=False)
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_ddim_is_one_loop_and_deterministic_at_eta_zero():
  model = gaussian_model(SCHED)
  ts = samplers.timestep_subsequence(1000, 10)
  fn = lambda rng: samplers.ddim_sample(SCHED, model, rng, (3, 2), timesteps=ts, eta=0.0)   # noqa: E731
  jaxpr = jax.make_jaxpr(fn)(jax.random.PRNGKey(0))
  loops = [e for e in jaxpr.jaxpr.eqns if e.primitive.name in ("scan", "while")]
  assert len(loops) == 1 and len(jaxpr.jaxpr.eqns) < 25
  x_T = jax.random.normal(jax.random.PRNGKey(3), (3, 2))
  a = samplers.ddim_sample(SCHED, model, jax.random.PRNGKey(0), (3, 2), timesteps=ts, x_T=x_T)
  b = samplers.ddim_sample(SCHED, model, jax.random.PRNGKey(9), (3, 2), timesteps=ts, x_T=x_T)
  np.testing.assert_array_equal(a, b)


def test_ddim_inversion_is_the_exact_inverse_for_a_constant_eps_and_close_for_the_gaussian():
  x0 = jnp.asarray(np.random.default_rng(2).normal(MU, S, (64, 2)), jnp.float32)
  const = samplers.from_eps(SCHED, lambda xt, t: jnp.full_like(xt, 0.7))
  ts = samplers.timestep_subsequence(1000, 20)
  x_T = samplers.ddim_encode(SCHED, const, x0, timesteps=ts)
  back = samplers.ddim_sample(SCHED, const, None, x0.shape, timesteps=ts, clip_x0=False, x_T=x_T)
  assert float(jnp.max(samplers.reconstruction_error(x0, back))) < 1e-4
  errors = []
  for steps in (10, 100):
    ts = samplers.timestep_subsequence(1000, steps)
    model = gaussian_model(SCHED)
    x_T = samplers.ddim_encode(SCHED, model, x0, timesteps=ts)
    back = samplers.ddim_sample(SCHED, model, None, x0.shape, timesteps=ts, clip_x0=False, x_T=x_T)
    errors.append(float(jnp.mean(samplers.reconstruction_error(x0, back))))
  # The encoding of N(MU, S^2) data is (close to) N(0, 1) and the error shrinks with the step size.
  assert errors[1] < errors[0] / 3 and errors[1] < 0.02, errors
  assert abs(float(jnp.std(x_T)) - 1.0) < 0.15


def test_bad_sampler_settings_are_named():
  with pytest.raises(ValueError, match="sampler='plms'; choose one of: ancestral, ddim"):
    samplers.sample(SCHED, gaussian_model(SCHED), jax.random.PRNGKey(0), (1, 1), sampler="plms")
  with pytest.raises(ValueError, match="eta=-1"):
    samplers.ddim_sample(SCHED, gaussian_model(SCHED), jax.random.PRNGKey(0), (1, 1), eta=-1.0)
  with pytest.raises(ValueError, match="timesteps must increase strictly"):
    samplers.ancestral_sample(SCHED, gaussian_model(SCHED), jax.random.PRNGKey(0), (1, 1), timesteps=[5, 3])
