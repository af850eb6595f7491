"""The forward process, its posterior, the loss and one sampler step, each against an independent oracle."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.diffusion import gaussian, samplers, schedules

SCHED = schedules.make_schedule("linear", 1000)


def test_q_sample_moments_match_marginal():
  x0 = jnp.array([0.7, -0.3, 0.0, 1.0])
  n = 200_000
  for t_val in (0, 250, 999):
    t = jnp.full((n,), t_val)
    noise = jax.random.normal(jax.random.PRNGKey(t_val), (n, 4))
    xt = gaussian.q_sample(SCHED, jnp.broadcast_to(x0, (n, 4)), t, noise)
    ab = np.prod(1 - schedules.linear_beta_schedule(1000)[: t_val + 1])
    se = np.sqrt((1 - ab) / n)
    np.testing.assert_allclose(xt.mean(0), np.sqrt(ab) * np.asarray(x0), atol=5 * se + 1e-6)
    np.testing.assert_allclose(xt.var(0), 1 - ab, rtol=0.02, atol=1e-6)


def test_iterated_forward_steps_give_the_marginal():
  """Composing q(x_t|x_{t-1}) with sqrt(beta_t) noise reproduces q(x_t|x_0) (fails with beta_t * eps)."""
  n, steps = 100_000, 50
  x = jnp.full((n, 1), 0.8)
  key = jax.random.PRNGKey(0)
  for t in range(steps):
    key, sub = jax.random.split(key)
    x = gaussian.q_step(SCHED, x, jnp.full((n,), t), jax.random.normal(sub, (n, 1)))
  mean, var, _ = gaussian.q_mean_variance(SCHED, jnp.full((1, 1), 0.8), jnp.array([steps - 1]))
  np.testing.assert_allclose(x.mean(), mean[0, 0], atol=4 * np.sqrt(var[0, 0] / n))
  np.testing.assert_allclose(x.var(), var[0, 0], rtol=0.03)


@pytest.mark.parametrize("t_val", [1, 10, 500, 999])
def test_posterior_against_bayes_rule_float64(t_val):
  """q(x_{t-1}|x_t,x_0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x_0): product of two Gaussians in x_{t-1}, in float64."""
  betas = schedules.linear_beta_schedule(1000)
  ab = np.cumprod(1 - betas)
  beta_t, ab_prev = betas[t_val], ab[t_val - 1]
  x0, xt = 0.37, -1.2
  # likelihood in x_{t-1}: N(x_t; sqrt(1-beta) x_{t-1}, beta) -> precision (1-beta)/beta, mean x_t/sqrt(1-beta)
  prec_lik, mean_lik = (1 - beta_t) / beta_t, xt / np.sqrt(1 - beta_t)
  prec_prior, mean_prior = 1 / (1 - ab_prev), np.sqrt(ab_prev) * x0
  var = 1 / (prec_lik + prec_prior)
  mean = var * (prec_lik * mean_lik + prec_prior * mean_prior)
  got_mean, got_var, got_logvar = gaussian.q_posterior_mean_variance(
      SCHED, jnp.array([[x0]]), jnp.array([[xt]]), jnp.array([t_val]))
  np.testing.assert_allclose(got_mean[0, 0], mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got_var[0, 0], var, rtol=1e-5)
  np.testing.assert_allclose(got_logvar[0, 0], np.log(var), rtol=1e-5, atol=1e-6)


def test_predict_x0_inverts_q_sample():
  x0 = jax.random.uniform(jax.random.PRNGKey(1), (8, 4, 4, 3), minval=-1, maxval=1)
  noise = jax.random.normal(jax.random.PRNGKey(2), x0.shape)
  t = jnp.arange(8) * 100
  xt = gaussian.q_sample(SCHED, x0, t, noise)
  np.testing.assert_allclose(gaussian.predict_x0_from_eps(SCHED, xt, t, noise), x0, atol=2e-4)


@pytest.mark.parametrize("variance", ["fixed_large", "fixed_small"])
def test_one_sampler_step_against_the_formula(variance):
  betas = schedules.linear_beta_schedule(1000)
  ab = np.cumprod(1 - betas)
  t_val = 600
  xt = np.array([[0.5, -0.25]], np.float64)
  eps = np.array([[0.1, 0.3]], np.float64)
  z = np.asarray(jax.random.normal(jax.random.PRNGKey(7), (1, 2)), np.float64)
  # Ho et al. Algorithm 2: x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - ab_t) eps) + sigma_t z
  mean = (xt - betas[t_val] / np.sqrt(1 - ab[t_val]) * eps) / np.sqrt(1 - betas[t_val])
  sigma2 = betas[t_val] if variance == "fixed_large" else betas[t_val] * (1 - ab[t_val - 1]) / (1 - ab[t_val])
  want = mean + np.sqrt(sigma2) * z
  model = samplers.from_eps(SCHED, lambda x, t: jnp.asarray(eps, jnp.float32))
  got = samplers.p_sample_step(SCHED, model, jnp.asarray(xt, jnp.float32),
                               jnp.array([t_val]), jax.random.PRNGKey(7), variance=variance, clip_x0=False)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
  # The last step adds no noise.
  last = samplers.p_sample_step(SCHED, model, jnp.asarray(xt, jnp.float32),
                                jnp.array([0]), jax.random.PRNGKey(7), variance=variance, clip_x0=False)
  np.testing.assert_allclose(last, (xt - betas[0] / np.sqrt(1 - ab[0]) * eps) / np.sqrt(1 - betas[0]), rtol=1e-4)


def test_ancestral_sample_is_one_loop_and_recovers_a_point_mass():
  """With the exact eps of a point mass at x0 = 0.5 the sampler must return 0.5 (fixed_small, T=100)."""
  sched = schedules.make_schedule("linear", 100, beta_start=1e-3, beta_end=0.05)
  target = 0.5
  def eps_fn(xt, t):
    ab = gaussian.extract(sched.alphas_cumprod, t, xt.ndim)
    return (xt - jnp.sqrt(ab) * target) / jnp.sqrt(1 - ab)
  model = samplers.from_eps(sched, eps_fn)
  sample = jax.jit(lambda rng: samplers.ancestral_sample(sched, model, rng, (16, 3), variance="fixed_small"))
  out = sample(jax.random.PRNGKey(0))
  np.testing.assert_allclose(out, target, atol=1e-3)
  jaxpr = jax.make_jaxpr(lambda rng: samplers.ancestral_sample(sched, model, rng, (2, 3)))(jax.random.PRNGKey(0))
  loops = [e for e in jaxpr.jaxpr.eqns if e.primitive.name in ("scan", "while")]
  assert len(loops) == 1 and len(jaxpr.jaxpr.eqns) < 20   # one compiled loop, not 100 unrolled steps


def test_bad_variance_name():
  with pytest.raises(ValueError, match="unknown sampler variance 'learned'"):
    samplers.ancestral_sample(SCHED, lambda x, t: x, jax.random.PRNGKey(0), (1, 1), variance="learned")
