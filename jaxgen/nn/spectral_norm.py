"""Spectral normalisation (Miyato et al. 2018): the power-iteration estimate of a weight's largest singular
value, and Dense / Conv layers whose kernel is divided by it.

The layers keep the power-iteration vector u in the 'spectral' collection. When that collection is mutable
(the discriminator update) one power iteration refines u; otherwise u is read only. sigma is differentiated
through W with u and v held fixed, as in the paper.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp


def _l2_normalize(x, eps=1e-12):
  return x * jax.lax.rsqrt(jnp.sum(jnp.square(x)) + eps)


def power_iteration(w_mat, u, num_iters: int = 1) -> Tuple[jnp.ndarray, jnp.ndarray]:
  """(sigma, u_new): u_new ~ top right-singular vector of w_mat (in, out) after `num_iters` steps from u (out,);
  sigma = v^T W u_new with v = normalise(W u_new), differentiable in w_mat with u, v treated as constants."""
  w_mat = w_mat.astype(jnp.float32)

  def body(_, u):
    v = _l2_normalize(w_mat @ u)
    return _l2_normalize(w_mat.T @ v)

  u = jax.lax.stop_gradient(jax.lax.fori_loop(0, num_iters, body, u.astype(jnp.float32)))
  v = jax.lax.stop_gradient(_l2_normalize(w_mat @ u))
  return v @ w_mat @ u, u


class _SpectralKernel(nn.Module):
  """Holds a kernel of `shape` and returns it divided by its spectral norm (matrix view: (-1, out))."""
  shape: Tuple[int, ...]
  num_iters: int = 1

  @nn.compact
  def __call__(self):
    kernel = self.param("kernel", nn.initializers.lecun_normal(), self.shape)
    w_mat = kernel.reshape(-1, self.shape[-1])
    u = self.variable("spectral", "u", lambda: jax.random.normal(jax.random.PRNGKey(0), (self.shape[-1],)))
    sigma, u_new = power_iteration(w_mat, u.value, self.num_iters)
    if self.is_mutable_collection("spectral") and not self.is_initializing():
      u.value = u_new
    return kernel / sigma


class SNDense(nn.Module):
  features: int
  num_iters: int = 1

  @nn.compact
  def __call__(self, x):
    kernel = _SpectralKernel((x.shape[-1], self.features), self.num_iters, name="sn")()
    return x @ kernel + self.param("bias", nn.initializers.zeros, (self.features,))


class SNConv(nn.Module):
  features: int
  kernel_size: Sequence[int] = (3, 3)
  strides: Sequence[int] = (1, 1)
  num_iters: int = 1

  @nn.compact
  def __call__(self, x):
    kernel = _SpectralKernel(tuple(self.kernel_size) + (x.shape[-1], self.features), self.num_iters, name="sn")()
    y = jax.lax.conv_general_dilated(x, kernel, tuple(self.strides), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + self.param("bias", nn.initializers.zeros, (self.features,))
