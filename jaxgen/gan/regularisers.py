"""Discriminator regularisers: the R1 penalty (Mescheder et al. 2018), the WGAN-GP gradient penalty
(Gulrajani et al. 2017), and spectral normalisation (Miyato et al. 2018, layers in jaxgen.nn.spectral_norm);
for the generator, BigGAN's orthogonal regulariser (Brock et al. 2019).

`d_fn` maps a batch of inputs to per-example logits (B,). Both penalties are means over the batch.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgen.nn.spectral_norm import SNConv, SNDense, power_iteration  # noqa: F401  (re-exported)


def _input_grads(d_fn, x):
  return jax.grad(lambda x: jnp.sum(d_fn(x).astype(jnp.float32)))(x)


def _sq_norms(g):
  return jnp.sum(jnp.square(g.astype(jnp.float32)).reshape(g.shape[0], -1), axis=-1)


def r1_penalty(d_fn, x_real) -> jnp.ndarray:
  """E ||grad_x D(x)||^2 on real data; the loss adds gamma / 2 times it."""
  return jnp.mean(_sq_norms(_input_grads(d_fn, x_real)))


def gradient_penalty(d_fn, x_real, x_fake, rng) -> jnp.ndarray:
  """E (||grad D(x_hat)|| - 1)^2 at x_hat = a x_real + (1 - a) x_fake, a ~ U[0, 1) per example."""
  a = jax.random.uniform(rng, (x_real.shape[0],) + (1,) * (x_real.ndim - 1))
  x_hat = a * x_real + (1.0 - a) * x_fake
  norms = jnp.sqrt(_sq_norms(_input_grads(d_fn, x_hat)) + 1e-12)
  return jnp.mean(jnp.square(norms - 1.0))


def spectral_norm(w, u, num_iters: int = 1):
  """(sigma estimate, refined u) of a kernel viewed as a (-1, out) matrix."""
  return power_iteration(w.reshape(-1, w.shape[-1]), u, num_iters)


def orthogonal_regulariser(params) -> jnp.ndarray:
  """BigGAN's orthogonal regulariser (Brock et al. 2019, eq. 3; the loss adds beta times it): the sum over every
  'kernel' leaf W (a dense or convolution kernel, viewed as a (-1, out) matrix) of ||W^T W * (1 - I)||_F^2,
  i.e. the squared off-diagonal Gram entries between filters; embeddings, biases and gains are left out."""
  total = jnp.zeros((), jnp.float32)
  for path, w in jax.tree_util.tree_flatten_with_path(params)[0]:
    name = getattr(path[-1], "key", None)
    if name != "kernel" or w.ndim < 2:
      continue
    m = w.reshape(-1, w.shape[-1]).astype(jnp.float32)
    gram = m.T @ m
    total = total + jnp.sum(jnp.square(gram * (1.0 - jnp.eye(gram.shape[0], dtype=gram.dtype))))
  return total
