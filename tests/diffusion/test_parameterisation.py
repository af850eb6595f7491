"""eps / x0 / v predictions and the loss weightings, against float64 algebra done here from alpha_bar alone."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.diffusion import parameterisation as P
from jaxgen.diffusion import schedules

SCHED = schedules.make_schedule("cosine", 1000)
T = np.array([0, 10, 300, 700, 999])


def _alpha_sigma64(t):
  betas = schedules.cosine_beta_schedule(1000)
  ab = np.cumprod(1 - betas)[t][:, None]
  return np.sqrt(ab), np.sqrt(1 - ab)


@pytest.mark.parametrize("prediction", P.PREDICTIONS)
def test_each_target_converts_back_to_eps_and_x0(prediction):
  rng = np.random.default_rng(0)
  x0, noise = rng.uniform(-1, 1, (5, 6)), rng.normal(size=(5, 6))
  a, s = _alpha_sigma64(T)
  xt = a * x0 + s * noise
  want = {"eps": noise, "x0": x0, "v": a * noise - s * x0}[prediction]
  tgt = P.target(SCHED, prediction, jnp.asarray(x0, jnp.float32), jnp.asarray(noise, jnp.float32), jnp.asarray(T))
  np.testing.assert_allclose(tgt, want, rtol=1e-5, atol=1e-5)
  eps, x0_hat = P.to_eps_x0(SCHED, prediction, jnp.asarray(xt, jnp.float32), jnp.asarray(T), jnp.asarray(want, jnp.float32))
  # x0 -> eps divides by sigma, tiny at t = 0: compare where sigma is not tiny, and x0 everywhere.
  np.testing.assert_allclose(x0_hat, x0, rtol=1e-3, atol=2e-3)
  np.testing.assert_allclose(np.asarray(eps)[1:], noise[1:], rtol=1e-3, atol=2e-3)


@pytest.mark.parametrize("weighting", P.WEIGHTINGS)
@pytest.mark.parametrize("prediction", P.PREDICTIONS)
def test_weighted_losses_are_one_weight_on_the_x0_error(prediction, weighting):
  """weight_t * (own target error)^2 must equal lambda(t) * (x0 error)^2 with lambda = 1/SNR-free forms:
  simple: own error unweighted; snr: lambda = SNR; min_snr: lambda = min(SNR, 5) (Hang et al. 2023)."""
  rng = np.random.default_rng(1)
  x0, noise, dx0 = rng.uniform(-1, 1, (5, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 4)) * 0.1
  a, s = _alpha_sigma64(T)
  xt = a * x0 + s * noise
  x0_hat = x0 + dx0                                  # a prediction that is off by dx0 in x0 space
  eps_hat = (xt - a * x0_hat) / s
  own = {"eps": (eps_hat, noise), "x0": (x0_hat, x0), "v": (a * eps_hat - s * x0_hat, a * noise - s * x0)}[prediction]
  own_err = np.mean((own[0] - own[1]) ** 2, axis=1)
  x0_err = np.mean(dx0 ** 2, axis=1)
  snr = (a * a / (s * s))[:, 0]
  w = P.loss_weights(SCHED, prediction, weighting, gamma=5.0)[T]
  if weighting == "simple":
    np.testing.assert_allclose(w, 1.0)
  else:
    lam = snr if weighting == "snr" else np.minimum(snr, 5.0)
    np.testing.assert_allclose(w * own_err, lam * x0_err, rtol=2e-3)


def test_min_snr_for_eps_is_the_papers_formula():
  snr = P.snr(SCHED)
  np.testing.assert_allclose(P.loss_weights(SCHED, "eps", "min_snr", 5.0), np.minimum(snr, 5.0) / snr, rtol=1e-6)
  np.testing.assert_allclose(P.loss_weights(SCHED, "v", "min_snr", 5.0), np.minimum(snr, 5.0) / (snr + 1), rtol=1e-6)


def test_bad_names_are_named():
  with pytest.raises(ValueError, match="prediction='score'; choose one of: eps, x0, v"):
    P.loss_weights(SCHED, "score", "simple")
  with pytest.raises(ValueError, match="loss_weighting='p2'; choose one of: simple, snr, min_snr"):
    P.loss_weights(SCHED, "eps", "p2")


def test_eps_from_x0_inverts_q_sample_and_matches_the_ddim_samplers_formula():
  # the eps the DDIM sampler recomputes after clipping x0 (jaxgen.diffusion.samplers.ddim_sample)
  rng = np.random.default_rng(1)
  x0, noise = rng.uniform(-1, 1, (5, 6)), rng.normal(size=(5, 6))
  a, s = _alpha_sigma64(T)
  xt = jnp.asarray(a * x0 + s * noise, jnp.float32)
  t = jnp.asarray(T)
  eps = P.eps_from_x0(SCHED, xt, t, jnp.asarray(x0, jnp.float32))
  keep = T > 0                                       # sigma_0 is tiny: eps is ill-conditioned there
  np.testing.assert_allclose(np.asarray(eps)[keep], noise[keep], rtol=1e-3, atol=2e-3)
  inline = (xt - jnp.asarray(SCHED.sqrt_alphas_cumprod)[t][:, None] * jnp.asarray(x0, jnp.float32)) / \
      jnp.asarray(SCHED.sqrt_one_minus_alphas_cumprod)[t][:, None]
  np.testing.assert_allclose(np.asarray(eps), np.asarray(inline), rtol=1e-6, atol=1e-6)
