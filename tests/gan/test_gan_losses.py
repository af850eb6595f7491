"""GAN losses against hand computations, R1 and the gradient penalty against finite differences, the
spectral-norm estimate against the SVD."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.gan import losses, regularisers
from jaxgen.nn.spectral_norm import SNDense

REAL = np.array([2.0, -0.5, 0.3])
FAKE = np.array([-1.0, 1.5, 0.0])


def log_sigmoid(x):
  return -math.log1p(math.exp(-x))


def test_losses_equal_hand_computation():
  D_real = [1 / (1 + math.exp(-r)) for r in REAL]
  D_fake = [1 / (1 + math.exp(-f)) for f in FAKE]
  # Goodfellow et al.: D maximises log D(x) + log(1 - D(G(z))).
  d_bce = -np.mean([math.log(p) for p in D_real]) - np.mean([math.log(1 - p) for p in D_fake])
  hand = {
      "non_saturating": (d_bce, -np.mean([math.log(p) for p in D_fake])),
      "minimax": (d_bce, np.mean([math.log(1 - p) for p in D_fake])),
      "hinge": (np.mean([max(0, 1 - r) for r in REAL]) + np.mean([max(0, 1 + f) for f in FAKE]), -np.mean(FAKE)),
      "wgan": (np.mean(FAKE) - np.mean(REAL), -np.mean(FAKE)),
  }
  for name, (d, g) in hand.items():
    got_d, parts = losses.discriminator_loss(name, jnp.asarray(REAL), jnp.asarray(FAKE))
    assert float(got_d) == pytest.approx(d, rel=1e-5), name
    assert float(parts["d_loss_real"] + parts["d_loss_fake"]) == pytest.approx(d, rel=1e-5)
    assert float(losses.generator_loss(name, jnp.asarray(FAKE))) == pytest.approx(g, rel=1e-5), name
  with pytest.raises(ValueError, match="'lsgan'"):
    losses.generator_loss("lsgan", jnp.asarray(FAKE))


def _d_fn(x):
  """A fixed smooth nonlinear 'discriminator' on (B, 3) inputs."""
  w = jnp.array([[0.5, -1.0], [1.5, 0.2], [-0.7, 0.9]])
  return jnp.sum(jnp.tanh(x @ w) ** 2, axis=-1) + jnp.sin(x[:, 0] * x[:, 2])


def _fd_grad(x, eps=1e-6):
  x = np.asarray(x, np.float64)
  f = lambda v: np.asarray(_d_fn(jnp.asarray(v, jnp.float64)))
  g = np.zeros_like(x)
  for i in range(x.shape[1]):
    e = np.zeros_like(x)
    e[:, i] = eps
    g[:, i] = (f(x + e) - f(x - e)) / (2 * eps)
  return g


def test_r1_and_gradient_penalty_match_finite_differences():
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    r1 = float(regularisers.r1_penalty(_d_fn, jnp.asarray(real)))
    assert r1 == pytest.approx(np.mean((_fd_grad(real) ** 2).sum(1)), rel=1e-6)
    key = jax.random.PRNGKey(3)
    gp = float(regularisers.gradient_penalty(_d_fn, jnp.asarray(real), jnp.asarray(fake), key))
    a = np.asarray(jax.random.uniform(key, (5, 1)))
    x_hat = a * real + (1 - a) * fake
    expect = np.mean((np.sqrt((_fd_grad(x_hat) ** 2).sum(1)) - 1) ** 2)
    assert gp == pytest.approx(expect, rel=1e-6)


def test_spectral_norm_estimate_matches_svd():
  w = jax.random.normal(jax.random.PRNGKey(0), (3, 3, 4, 6))    # a conv kernel: (-1, 6) = (36, 6)
  u0 = jax.random.normal(jax.random.PRNGKey(1), (6,))
  top = float(jnp.linalg.svd(w.reshape(-1, 6), compute_uv=False)[0])
  sigma_1, _ = regularisers.spectral_norm(w, u0, 1)
  sigma, _ = regularisers.spectral_norm(w, u0, 100)
  assert float(sigma) == pytest.approx(top, rel=1e-4)
  assert float(sigma_1) <= top * (1 + 1e-5)
  # The layer: after many refining calls its normalised kernel has spectral norm 1.
  layer = SNDense(5)
  x = jnp.ones((2, 7))
  v = layer.init(jax.random.PRNGKey(2), x)
  refine = jax.jit(lambda v, x: layer.apply(v, x, mutable=["spectral"]))
  for _ in range(50):
    _, mut = refine(v, x)
    v = {**v, **mut}
  k = v["params"]["sn"]["kernel"]
  sigma, _ = regularisers.power_iteration(k, v["spectral"]["sn"]["u"], 0)
  assert float(sigma) == pytest.approx(float(jnp.linalg.svd(k, compute_uv=False)[0]), rel=1e-4)
