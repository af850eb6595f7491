r"""Flows as priors for inverse problems (Chávez 2022, arXiv 2110.13285; Asim et al. 2020).

Observations y = A x + n, n ~ N(0, sigma^2 I), pixels x in [0, 1]. With the flow x = g(eps), eps ~ N(0, I),
the posterior over eps is
  -log p(eps | y) = ||A g(eps) - y||^2 / (2 sigma^2) + ||eps||^2 / 2 + const,
and, g being a bijection, pushing it through g gives the posterior over x.
  map_estimate:       Adam on that objective (prior_weight = 1; prior_weight = 0 is the no-prior latent fit)
  posterior_samples:  Metropolis-adjusted Langevin (MALA) in eps: propose eps' = eps - h grad U + sqrt(2h) xi and
                      accept with min(1, exp(U(eps) - U(eps') + log q(eps | eps') - log q(eps' | eps))),
                      q(a | b) = N(a; b - h grad U(b), 2h I). The accept/reject step makes the chain's stationary
                      law the exact posterior (unadjusted Langevin is biased for any h > 0). Each image has its own
                      step size h, adapted during burn-in toward an acceptance of 0.574 (Roberts & Rosenthal 1998)
                      and then frozen, so the kept states are a valid MCMC sample.
Safeguard: the inverse of a flow trained on quantised data is steep away from the data, and a step can send a
latent where decoding overflows. Adam steps whose latent or decoding is non-finite are rejected for that image
(its latent stays where it was); for MALA a non-finite energy is simply a rejected proposal. `accepted`
fractions are reported.
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


def _energies(model, params, y, mask, sigma, prior_weight: float = 1.0):
  """Per image U(eps) = ||mask (g(eps) - y)||^2 / (2 sigma^2) + prior_weight ||eps||^2 / 2, and the decoding
  g(eps) in [0, 1]."""
  def energies(eps):
    x01 = (model.decode(params, eps) + 1.0) / 2.0
    fit = jnp.sum(((mask * (x01 - y)) ** 2).reshape(x01.shape[0], -1), axis=1) / (2 * sigma ** 2)
    return fit + prior_weight * 0.5 * jnp.sum(eps ** 2, axis=1), x01
  return energies


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
  """argmin_eps of the negative log posterior by Adam from eps0; returns (x in [0, 1], eps, the fraction of
  steps accepted over images and steps)."""
  energies = _energies(model, params, y, mask, sigma, prior_weight)
  energy = lambda eps: jnp.sum(energies(eps)[0])   # noqa: E731  (images are independent)
  tx = optax.adam(learning_rate)

  def body(carry, _):
    eps, opt = carry
    g = jnp.nan_to_num(jax.grad(energy)(eps))
    upd, opt = tx.update(g, opt, eps)
    eps, ok = _guarded(model, params, eps, optax.apply_updates(eps, upd))
    return (eps, opt), ok.mean()
  (eps, _), accepted = jax.lax.scan(body, (eps0, tx.init(eps0)), None, length=steps)
  return (model.decode(params, eps) + 1.0) / 2.0, eps, accepted.mean()


def posterior_samples(model, params, y, mask, eps0, rng, *, sigma: float, steps: int, step_size: float,
                      burn_in: int | None = None, target_accept: float = 0.574):
  """MALA in the latent from eps0 (e.g. the MAP latent); see the module docstring.

  steps: total steps; burn_in (default steps // 2): the first steps, during which each image's step size moves
  from `step_size` toward `target_accept` (log h += (accepted - target) / sqrt(t + 1)); the states after it are
  kept. Returns dict(sample=last state decoded (B, H, W, C) in [0, 1], mean=average decoding over the kept
  states (a posterior-mean estimate), accept_rate=acceptance over the kept steps, step_size=(B,) final h).
  """
  burn_in = steps // 2 if burn_in is None else burn_in
  if not 0 <= burn_in < steps:
    raise ValueError(f"burn_in={burn_in} must lie in [0, steps={steps})")
  if step_size <= 0:
    raise ValueError(f"step_size={step_size} must be > 0")
  energies = _energies(model, params, y, mask, sigma)

  def summed(eps):        # images are independent: the gradient of the sum is each image's gradient
    u, x01 = energies(eps)
    return jnp.sum(jnp.where(jnp.isfinite(u), u, 0.0)), (u, x01)

  def unpack(eps):
    """(U (B,), decoding (B, H, W, C), grad U (B, D)) at eps."""
    (_, (u, x01)), g = jax.value_and_grad(summed, has_aux=True)(eps)
    return u, x01, g

  def log_q(to, frm, g_frm, h):    # log N(to; frm - h g, 2h I) up to a constant shared by both directions
    return -jnp.sum((to - frm + h[:, None] * g_frm) ** 2, axis=1) / (4 * h)

  def body(carry, inp):
    eps, u, x01, g, log_h, total, kept_acc = carry
    t, key = inp
    h = jnp.exp(log_h)
    k_prop, k_acc = jax.random.split(key)
    prop = eps - h[:, None] * g + jnp.sqrt(2 * h)[:, None] * jax.random.normal(k_prop, eps.shape)
    u_p, x_p, g_p = unpack(prop)
    finite = jnp.isfinite(u_p) & jnp.all(jnp.isfinite(g_p), axis=1) & jnp.all(jnp.isfinite(prop), axis=1)
    log_alpha = u - u_p + log_q(eps, prop, g_p, h) - log_q(prop, eps, g, h)
    log_alpha = jnp.where(finite, jnp.minimum(log_alpha, 0.0), -jnp.inf)
    accept = jnp.log(jax.random.uniform(k_acc, u.shape)) < log_alpha
    sel = lambda new, old: jnp.where(accept.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)   # noqa: E731
    eps, u, x01, g = sel(prop, eps), sel(u_p, u), sel(x_p, x01), sel(g_p, g)
    adapting = t < burn_in
    log_h = jnp.where(adapting, log_h + (jnp.exp(log_alpha) - target_accept) / jnp.sqrt(t + 1.0), log_h)
    keep = jnp.where(adapting, 0.0, 1.0)
    return (eps, u, x01, g, log_h, total + keep * x01, kept_acc + keep * accept), None

  u0, x0, g0 = unpack(eps0)
  bad = ~(jnp.isfinite(u0) & jnp.all(jnp.isfinite(g0), axis=1))   # such a start accepts any finite proposal
  b = eps0.shape[0]
  carry = (eps0, jnp.where(bad, jnp.inf, u0), x0, jnp.where(bad[:, None], 0.0, g0),
           jnp.full((b,), jnp.log(step_size), jnp.float32), jnp.zeros_like(x0), jnp.zeros((b,), jnp.float32))
  keys = jax.random.split(rng, steps)
  (eps, u, x01, g, log_h, total, kept_acc), _ = jax.lax.scan(body, carry, (jnp.arange(steps), keys))
  kept = steps - burn_in
  return dict(sample=x01, mean=total / kept, accept_rate=kept_acc / kept, step_size=jnp.exp(log_h))
