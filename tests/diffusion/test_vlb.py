"""The variational bound: each term against float64 NumPy/SciPy written from the paper on a tiny case, the
decoder's bins summing to one, and the bound of the exact denoiser of a point mass in closed form."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import log_ndtr
from scipy.stats import norm

from jaxgen.diffusion import samplers, schedules, vlb

T = 6
BETAS = np.linspace(0.05, 0.6, T)
SCHED = schedules.diffusion_schedule_from_betas(BETAS)
AB = np.cumprod(1 - BETAS)
AB_PREV = np.append(1.0, AB[:-1])
POST_VAR = BETAS * (1 - AB_PREV) / (1 - AB)


def _kl64(m1, v1, m2, v2):
  """KL(N(m1, v1) || N(m2, v2)) = log(s2/s1) + (v1 + (m1-m2)^2) / (2 v2) - 1/2."""
  return 0.5 * np.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / (2 * v2) - 0.5


def _decoder_nll64(x, mean, var):
  """-log of the bin's mass, by SciPy in float64: log Phi at the edges, else log(Phi(b) - Phi(a)) computed
  on the tail side (mirrored above the mean) so that far bins do not underflow to log 0."""
  sd, h = np.sqrt(var), 1 / 255
  a, b = (x - h - mean) / sd, (x + h - mean) / sd
  a, b = np.where(a > 0, -b, a), np.where(a > 0, -a, b)
  interior = log_ndtr(b) + np.log1p(-np.exp(log_ndtr(a) - log_ndtr(b)))
  out = np.where(x > 1 - h, log_ndtr(-(x - h - mean) / sd), np.where(x < -1 + h, log_ndtr((x + h - mean) / sd), interior))
  return -out


def test_discretised_decoder_bins_sum_to_one_and_match_scipy():
  grid = jnp.asarray(np.arange(256) / 127.5 - 1.0, jnp.float32)
  for mean, log_scale in ((0.1, -2.0), (-0.97, -4.0), (0.999, -1.0)):
    logp = vlb.discretized_gaussian_log_likelihood(grid, mean, jnp.float32(log_scale))
    assert abs(float(jnp.sum(jnp.exp(logp))) - 1.0) < 1e-4
    np.testing.assert_allclose(-np.asarray(logp), _decoder_nll64(np.asarray(grid, np.float64), mean,
                                                                 np.exp(2 * log_scale)), rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("variance", ["fixed_large", "fixed_small"])
def test_every_term_against_float64(variance):
  rng = np.random.default_rng(0)
  x0 = (rng.integers(0, 256, (2, 3)) / 127.5 - 1.0).astype(np.float32)
  eps_fn = lambda xt, t: 0.3 * xt + 0.05 * t[:, None].astype(jnp.float32)   # noqa: E731  any model will do
  model = samplers.from_eps(SCHED, eps_fn)
  key = jax.random.PRNGKey(3)
  terms = vlb.vlb_terms(SCHED, model, jnp.asarray(x0), key, variance=variance)
  model_var = np.append(POST_VAR[1], BETAS[1:]) if variance == "fixed_large" else np.append(POST_VAR[1], POST_VAR[1:])
  x = x0.astype(np.float64)
  kl, decoder = np.zeros(2), None
  for t in range(T):
    noise = np.asarray(jax.random.normal(jax.random.fold_in(key, t), x0.shape), np.float64)
    xt = np.sqrt(AB[t]) * x + np.sqrt(1 - AB[t]) * noise
    eps = 0.3 * xt + 0.05 * t
    x0_hat = (xt - np.sqrt(1 - AB[t]) * eps) / np.sqrt(AB[t])
    c1, c2 = BETAS[t] * np.sqrt(AB_PREV[t]) / (1 - AB[t]), (1 - AB_PREV[t]) * np.sqrt(1 - BETAS[t]) / (1 - AB[t])
    mean = c1 * x0_hat + c2 * xt
    if t == 0:
      decoder = _decoder_nll64(x, mean, model_var[0]).sum(axis=1)
    else:
      kl += _kl64(c1 * x + c2 * xt, POST_VAR[t], mean, model_var[t]).sum(axis=1)
  prior = _kl64(np.sqrt(AB[-1]) * x, 1 - AB[-1], 0.0, 1.0).sum(axis=1)
  np.testing.assert_allclose(terms["decoder"], decoder, rtol=1e-4)
  np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4)
  np.testing.assert_allclose(terms["prior"], prior, rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(terms["bits_per_dim"], (decoder + kl + prior) / (3 * np.log(2)), rtol=1e-4)


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
def test_the_bound_of_the_exact_denoiser_of_a_point_mass(variance):
  """Data = one point c on the 8-bit grid; the model predicts the true eps, so x0_hat = c and the means agree:
  what is left is the prior term, the decoder's mass on c's bin, and (fixed_large only) the variance mismatch
  0.5 (r - 1 - log r), r = beta~_t / beta_t, of every KL term."""
  c = np.float32(2 * 140 / 255 - 1)
  sched = schedules.make_schedule("linear", 200, beta_start=1e-3, beta_end=0.1)
  betas = schedules.linear_beta_schedule(200, 1e-3, 0.1)
  ab = np.cumprod(1 - betas)
  post = betas * (1 - np.append(1.0, ab[:-1])) / (1 - ab)

  def eps_fn(xt, t):
    a = jnp.take(jnp.asarray(sched.sqrt_alphas_cumprod), t)[:, None]
    s = jnp.take(jnp.asarray(sched.sqrt_one_minus_alphas_cumprod), t)[:, None]
    return (xt - a * c) / s

  x0 = jnp.full((4, 5), c)
  terms = vlb.vlb_terms(sched, samplers.from_eps(sched, eps_fn), x0, jax.random.PRNGKey(0), variance=variance)
  d = 5
  prior = d * _kl64(np.sqrt(ab[-1]) * c, 1 - ab[-1], 0.0, 1.0)
  decoder = d * -np.log(2 * norm.cdf((1 / 255) / np.sqrt(post[1])) - 1)
  r = post[1:] / betas[1:]
  kl = 0.0 if variance == "fixed_small" else d * np.sum(0.5 * (r - 1 - np.log(r)))
  np.testing.assert_allclose(terms["prior"], prior, rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(terms["decoder"], decoder, rtol=1e-3)
  np.testing.assert_allclose(terms["kl"], kl, rtol=1e-3, atol=2e-3)
  np.testing.assert_allclose(terms["total"], prior + decoder + kl, rtol=1e-3, atol=2e-3)
