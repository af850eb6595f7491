r"""Flows as priors for inverse problems (Chávez 2022, arXiv 2110.13285; Asim et al. 2020).

Observations y = A x + n, n ~ N(0, sigma^2 I), pixels x in [0, 1]. With the flow x = g(eps), eps ~ N(0, I),
the posterior over eps is
  -log p(eps | y) = ||A g(eps) - y||^2 / (2 sigma^2) + ||eps||^2 / 2 + const,
and, g being a bijection, pushing it through g gives the posterior over x.
  map_estimate:       Adam on that objective (prior_weight = 1; prior_weight = 0 is the no-prior latent fit)
  posterior_samples:  unadjusted Langevin dynamics in eps, eps <- eps - eta grad U + sqrt(2 eta) xi
Safeguard: the inverse of a flow trained on 8-bit data is steep away from the data, and a step can send a latent
where decoding overflows; such a step is rejected for that image (its latent stays where it was), so one image
never turns the figures into NaN. `accepted_fraction` reports how often steps were kept.
Operators: 'denoise' (A = I) and 'inpaint' (A = a binary mask hiding a centred square block).
PSNR = 10 log10(MAX^2 / MSE) with MAX = 1, per image.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

TASKS = ("denoise", "inpaint")


def psnr(estimate, target, max_value: float = 1.0) -> np.ndarray:
  """Per-image PSNR in dB: 10 log10(max_value^2 / mean squared error)."""
  e, t = np.asarray(estimate, np.float64), np.asarray(target, np.float64)
  if e.shape != t.shape:
    raise ValueError(f"psnr: shapes differ, {e.shape} vs {t.shape}")
  mse = ((e - t) ** 2).reshape(len(e), -1).mean(axis=1)
  return 10.0 * np.log10(max_value ** 2 / np.maximum(mse, 1e-12))


def block_mask(image_shape, block: int) -> np.ndarray:
  """1 = observed, 0 = a centred block x block square hidden, shape (H, W, C)."""
  h, w, c = image_shape
  if not 0 < block < min(h, w):
    raise ValueError(f"block={block} must lie in (0, {min(h, w)})")
  m = np.ones((h, w, c), np.float32)
  r, s = (h - block) // 2, (w - block) // 2
  m[r:r + block, s:s + block] = 0.0
  return m


def observe(x01, task: str, rng, *, sigma: float, mask=None):
  """y = A x + sigma * noise for x in [0, 1]; returns (y, mask) (mask = ones for denoising)."""
  if task not in TASKS:
    raise ValueError(f"unknown inverse problem {task!r}; choose one of: {', '.join(TASKS)}")
  if sigma <= 0:
    raise ValueError(f"sigma={sigma} must be > 0")
  m = jnp.ones(x01.shape[1:], jnp.float32) if task == "denoise" else jnp.asarray(mask, jnp.float32)
  return m * x01 + sigma * m * jax.random.normal(rng, x01.shape), m


def no_prior_estimate(y, mask, fill_value: float):
  """The estimate without a prior: observed pixels as measured, hidden ones set to `fill_value`."""
  return jnp.clip(mask * y + (1 - mask) * fill_value, 0.0, 1.0)


def _energy(model, params, y, mask, sigma, prior_weight):
  def energy(eps):
    x01 = (model.decode(params, eps) + 1.0) / 2.0
    fit = jnp.sum((mask * (x01 - y)) ** 2) / (2 * sigma ** 2)
    return fit + prior_weight * 0.5 * jnp.sum(eps ** 2)
  return energy


def _finite_rows(x):
  return jnp.all(jnp.isfinite(x.reshape(x.shape[0], -1)), axis=1)


def _guarded(model, params, old, new):
  """Per image: keep `new` where it and its decoding are finite, else `old`; returns (eps, accepted (B,))."""
  ok = _finite_rows(new) & _finite_rows(model.decode(params, new))
  return jnp.where(ok[:, None], new, old), ok


def initial_latent(model, params, estimate01):
  """Start from the latent of a first estimate where it decodes to finite values, else from eps = 0."""
  images = jnp.round(jnp.clip(estimate01, 0.0, 1.0) * 255).astype(jnp.uint8)
  eps = model.encode(params, images)
  ok = _finite_rows(eps) & _finite_rows(model.decode(params, eps))
  return jnp.where(ok[:, None], eps, 0.0)


def map_estimate(model, params, y, mask, eps0, *, sigma: float, steps: int, learning_rate: float,
                 prior_weight: float = 1.0):
  """argmin_eps of the negative log posterior by Adam from eps0; returns (x in [0, 1], eps)."""
  energy = _energy(model, params, y, mask, sigma, prior_weight)
  tx = optax.adam(learning_rate)

  def body(carry, _):
    eps, opt = carry
    g = jnp.nan_to_num(jax.grad(energy)(eps))
    upd, opt = tx.update(g, opt, eps)
    eps, ok = _guarded(model, params, eps, optax.apply_updates(eps, upd))
    return (eps, opt), ok.mean()
  (eps, _), accepted = jax.lax.scan(body, (eps0, tx.init(eps0)), None, length=steps)
  return (model.decode(params, eps) + 1.0) / 2.0, eps, accepted.mean()


def posterior_samples(model, params, y, mask, eps0, rng, *, sigma: float, steps: int, step_size: float):
  """Unadjusted Langevin in the latent from eps0; returns (final x in [0, 1], accepted fraction)."""
  energy = _energy(model, params, y, mask, sigma, 1.0)

  def body(eps, key):
    g = jnp.nan_to_num(jax.grad(energy)(eps))
    new = eps - step_size * g + jnp.sqrt(2 * step_size) * jax.random.normal(key, eps.shape)
    eps, ok = _guarded(model, params, eps, new)
    return eps, ok.mean()
  eps, accepted = jax.lax.scan(body, eps0, jax.random.split(rng, steps))
  return (model.decode(params, eps) + 1.0) / 2.0, accepted.mean()
