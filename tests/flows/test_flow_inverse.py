"""Inverse-problem solvers against a closed form: with a linear 'flow' x = B eps + c and y = M x + N(0, sigma^2),
the posterior over eps is Gaussian, N(m, S) with S = (B^T M B / sigma^2 + I)^-1 and m = S B^T M (y - c) / sigma^2,
so the MAP latent must equal m and MALA's samples must have mean m and covariance S."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.flows import inverse as inv

SHAPE = (2, 2, 1)
D = 4


class LinearFlow:
  """decode(eps) = 2 (B eps + c) - 1 as (N, 2, 2, 1) images in [-1, 1] (no clipping), optionally NaN where
  eps[0] > nan_above (a stand-in for a flow whose inverse overflows off the data)."""

  def __init__(self, b, c, nan_above=None):
    self.b, self.c, self.nan_above = jnp.asarray(b), jnp.asarray(c), nan_above

  def decode(self, params, eps):
    x01 = eps @ self.b.T + self.c
    if self.nan_above is not None:
      x01 = jnp.where(eps[:, :1] > self.nan_above, jnp.nan, x01)
    return (2.0 * x01 - 1.0).reshape((-1,) + SHAPE)


def problem(mask_pixels=(1, 1, 1, 1), sigma=0.3, seed=0):
  r = np.random.default_rng(seed)
  b = 0.4 * r.normal(size=(D, D)) + 0.3 * np.eye(D)
  c = np.full(D, 0.5)
  m = np.asarray(mask_pixels, np.float64)
  y = m * (r.uniform(0.2, 0.8, size=D))
  prec = b.T @ np.diag(m) @ b / sigma ** 2 + np.eye(D)
  cov = np.linalg.inv(prec)
  mean = cov @ b.T @ (m * (y - c)) / sigma ** 2
  return LinearFlow(b.astype(np.float32), c.astype(np.float32)), y, m, sigma, mean, cov


def as_batch(v, n):
  return jnp.tile(jnp.asarray(v, jnp.float32).reshape((1,) + SHAPE), (n, 1, 1, 1))


@pytest.mark.parametrize("mask_pixels", [(1, 1, 1, 1), (1, 0, 1, 1)])
def test_map_estimate_is_the_gaussian_posterior_mode(mask_pixels):
  model, y, m, sigma, mean, _ = problem(mask_pixels)
  yb, mb = as_batch(y, 2), jnp.asarray(m, jnp.float32).reshape(SHAPE)
  x, eps, accepted = jax.jit(lambda e: inv.map_estimate(model, None, yb, mb, e, sigma=sigma, steps=1500,
                                                        learning_rate=0.02))(jnp.zeros((2, D)))
  np.testing.assert_allclose(eps, np.tile(mean, (2, 1)), atol=2e-3)
  np.testing.assert_allclose(np.asarray(x).reshape(2, D), np.tile(model.b @ mean + model.c, (2, 1)), atol=2e-3)
  assert float(accepted) == 1.0


def test_mala_samples_have_the_posterior_mean_and_covariance():
  model, y, m, sigma, mean, cov = problem((1, 0, 1, 1))
  n = 4000
  out = jax.jit(lambda e, k: inv.posterior_samples(model, None, as_batch(y, n), jnp.asarray(m, jnp.float32)
                                                   .reshape(SHAPE), e, k, sigma=sigma, steps=200, step_size=0.05))(
      jnp.zeros((n, D)), jax.random.PRNGKey(0))
  # the decoded last states are B eps + c: map them back to eps (B is invertible)
  eps = np.linalg.solve(np.asarray(model.b, np.float64), (np.asarray(out["sample"]).reshape(n, D) - 0.5).T).T
  se = np.sqrt(np.diag(cov) / n)
  assert np.all(np.abs(eps.mean(0) - mean) < 5 * se + 1e-3), (eps.mean(0), mean)
  np.testing.assert_allclose(np.cov(eps.T), cov, atol=0.08 * np.abs(cov).max())
  # the running average over kept states estimates the posterior mean of x
  np.testing.assert_allclose(np.asarray(out["mean"]).reshape(n, D).mean(0), model.b @ mean + 0.5, atol=5e-3)
  rate = np.asarray(out["accept_rate"])
  assert 0.35 < rate.mean() < 0.85, rate.mean()   # adapted toward 0.574
  assert np.all(np.asarray(out["step_size"]) > 0)


def test_mala_rejects_proposals_whose_decoding_is_not_finite():
  model, y, m, sigma, _, _ = problem()
  model = LinearFlow(model.b, model.c, nan_above=0.2)
  n = 64
  out = jax.jit(lambda e, k: inv.posterior_samples(model, None, as_batch(y, n), jnp.ones(SHAPE), e, k,
                                                   sigma=sigma, steps=60, step_size=0.1))(
      jnp.zeros((n, D)), jax.random.PRNGKey(1))
  assert np.all(np.isfinite(np.asarray(out["sample"]))) and np.all(np.isfinite(np.asarray(out["mean"])))
  eps = np.linalg.solve(np.asarray(model.b, np.float64), (np.asarray(out["sample"]).reshape(n, D) - 0.5).T).T
  assert np.all(eps[:, 0] <= 0.2 + 1e-5)
  with pytest.raises(ValueError, match="burn_in"):
    inv.posterior_samples(model, None, as_batch(y, 1), jnp.ones(SHAPE), jnp.zeros((1, D)), jax.random.PRNGKey(0),
                          sigma=sigma, steps=10, step_size=0.1, burn_in=10)
