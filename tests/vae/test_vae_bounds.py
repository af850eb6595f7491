"""VAE numerics: KL closed form, ELBO vs an independent Monte-Carlo estimate, IWAE >= ELBO growing with k,
the discretised logistic normalises over the 256 values."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from jaxgen.nn.mlp import MLP
from jaxgen.vae import likelihoods
from jaxgen.vae.vae import VAE, kl_to_standard_normal

SHAPE = (4, 4, 1)
D = 16


def tiny_vae(likelihood, latent_dim=2):
  enc = MLP(hidden=(16,), out_features=2 * latent_dim, activation=jax.nn.tanh)

  class Dec(MLP):
    def __call__(self, z):
      return super().__call__(z).reshape((z.shape[0],) + SHAPE[:2] + (-1,))

  dec = Dec(hidden=(16,), out_features=D * likelihoods.num_params(likelihood), activation=jax.nn.tanh)
  return VAE(encoder=enc, decoder=dec, image_shape=SHAPE, latent_dim=latent_dim, likelihood=likelihood)


def images(n=3, seed=0):
  return np.random.default_rng(seed).integers(0, 256, size=(n,) + SHAPE).astype(np.uint8)


def test_kl_matches_closed_form_by_quadrature_and_monte_carlo():
  mean, logvar = np.array([[0.7, -1.2]]), np.array([[-0.5, 0.8]])
  kl = float(kl_to_standard_normal(jnp.asarray(mean), jnp.asarray(logvar))[0])
  # Independent: numerical integration of q log(q/p) per dimension (the KL of a product sums).
  grid = np.linspace(-15, 15, 200001)
  total = 0.0
  for m, lv in zip(mean[0], logvar[0]):
    q = stats.norm.pdf(grid, m, math.exp(0.5 * lv))
    total += np.trapezoid(q * (stats.norm.logpdf(grid, m, math.exp(0.5 * lv)) - stats.norm.logpdf(grid)), grid)
  assert kl == pytest.approx(total, rel=1e-5)
  z = np.random.default_rng(1).normal(mean, np.exp(0.5 * logvar), size=(400_000, 2))
  mc = (stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)) - stats.norm.logpdf(z)).sum(1).mean()
  assert kl == pytest.approx(mc, abs=5e-3)


def _numpy_log_lik(name, out, x_uint8, target):
  """Independent numpy/scipy versions of the three decoders (per image, summed)."""
  out = np.asarray(out, np.float64)
  if name == "bernoulli":
    return (target * -np.logaddexp(0, -out) + (1 - target) * -np.logaddexp(0, out)).reshape(len(out), -1).sum(1)
  mean, raw = np.split(out, 2, axis=-1)
  log_scale = likelihoods.LOG_SCALE_MIN + np.logaddexp(0, raw - likelihoods.LOG_SCALE_MIN)
  if name == "gaussian":
    return stats.norm.logpdf(target, mean, np.exp(log_scale)).reshape(len(out), -1).sum(1)
  x = x_uint8 / 127.5 - 1.0
  s = np.exp(log_scale)
  upper = np.where(x_uint8 >= 255, 1.0, special.expit((x + 1 / 255 - mean) / s))
  lower = np.where(x_uint8 <= 0, 0.0, special.expit((x - 1 / 255 - mean) / s))
  return np.log(upper - lower).reshape(len(out), -1).sum(1)


@pytest.mark.parametrize("name", likelihoods.LIKELIHOODS)
def test_elbo_equals_independent_monte_carlo(name):
  vae = tiny_vae(name)
  params = vae.init(jax.random.PRNGKey(0))
  x = images(2)
  n = 4000
  ours = jax.jit(jax.vmap(lambda k: vae.elbo_terms(params, x, k)["elbo"]))(jax.random.split(jax.random.PRNGKey(1), n))
  ours = np.asarray(ours)                                       # (n, B), analytic KL
  # Independent estimator: the same data draw rule, but z, log q and log p(z) in numpy and the full
  # log p(x, z) - log q(z | x) integrand (no analytic KL).
  m = 2000
  keys = jax.random.split(jax.random.PRNGKey(7), m)
  x_in, target = jax.vmap(lambda k: likelihoods.prepare(name, x, k))(keys)          # (m, B, ...)
  mean, logvar = (np.asarray(a, np.float64) for a in jax.jit(jax.vmap(lambda xi: vae.posterior(params, xi)))(x_in))
  std = np.exp(0.5 * logvar)
  z = mean + std * np.random.default_rng(2).standard_normal(mean.shape)               # (m, B, L)
  out = np.asarray(jax.jit(lambda zz: vae.decode(params, zz))(jnp.asarray(z.reshape(-1, 2), jnp.float32)))
  xs = np.broadcast_to(x, (m,) + x.shape).reshape((-1,) + SHAPE).astype(np.float64)
  lw = _numpy_log_lik(name, out, xs, np.asarray(target, np.float64).reshape((-1,) + SHAPE)).reshape(m, -1) \
      + stats.norm.logpdf(z).sum(-1) - stats.norm.logpdf(z, mean, std).sum(-1)
  est = lw
  se = np.sqrt(ours.var(0) / n + est.var(0) / len(est))
  np.testing.assert_array_less(np.abs(ours.mean(0) - est.mean(0)), 4 * se + 1e-3)


@pytest.mark.parametrize("name", ["logistic"])
def test_iwae_at_least_elbo_and_grows_with_k(name):
  vae = tiny_vae(name)
  params = vae.init(jax.random.PRNGKey(3))
  x = images(4, seed=5)
  elbo = np.asarray(jax.jit(jax.vmap(lambda k: vae.elbo_terms(params, x, k)["elbo"]))(
      jax.random.split(jax.random.PRNGKey(4), 2000))).mean()
  bounds = {}
  for k in (1, 5, 50):
    f = jax.jit(jax.vmap(lambda key: vae.iwae_bound(params, x, key, k, chunk=25)))
    bounds[k] = float(np.asarray(f(jax.random.split(jax.random.PRNGKey(10 + k), 100))).mean())
  assert bounds[1] == pytest.approx(elbo, abs=0.05 * abs(elbo) / 10 + 0.1)
  assert bounds[5] > bounds[1] and bounds[50] > bounds[5]
  assert bounds[50] >= elbo


def test_discretized_logistic_sums_to_one_over_256_values():
  pixels = jnp.arange(256, dtype=jnp.float32)
  for mean, log_scale in [(0.0, -3.0), (0.9, -5.0), (-1.2, 0.5), (0.3, -7.0)]:
    lp = likelihoods.discretized_logistic_log_prob(pixels, jnp.full(256, mean), jnp.full(256, log_scale))
    assert float(jnp.exp(lp).sum()) == pytest.approx(1.0, abs=1e-4)
    assert np.all(np.isfinite(np.asarray(lp)))


def test_bad_settings_raise_naming_the_value():
  with pytest.raises(ValueError, match="'poisson'"):
    likelihoods.check_likelihood("poisson")
  from experiments.vae_digits import get_config
  from jaxgen.vae.build import validate_vae_config
  config = get_config("smoke")
  config.model.beta = -1.0
  with pytest.raises(ValueError, match="model.beta=-1"):
    validate_vae_config(config)
  with pytest.raises(ValueError, match="num_samples=0"):
    tiny_vae("bernoulli").iwae_bound({}, images(1), jax.random.PRNGKey(0), 0)
