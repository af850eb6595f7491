"""Glow layers (Kingma & Dhariwal 2018): actnorm, invertible 1x1 convolution in LU form, the Glow step.

Both layers act on the last axis (channels) and are shared by every position, so for inputs (B, ..., C) the
log-determinant is (number of positions) * (per-position log-det). They work unchanged on NHWC images and on
2-D vectors (B, C), where the "1x1 convolution" is an invertible linear map.

ActNorm: y = (x + b) * exp(log_s). Its data-dependent initialisation is `init(rng, x)` itself: b = -mean(x),
log_s = -log(std(x) + 1e-6) per channel, so the first batch leaves with zero mean and unit variance. It is a
pure function of the example batch and runs only when params are created; a restored checkpoint brings its
trained b and log_s back and nothing re-initialises them (there is no "initialised" flag to lose).

Invertible 1x1 conv, LU form: W = P L (U + diag(sign_s * exp(log_s))), with P a fixed permutation, L unit
lower-triangular, U strictly upper-triangular, sign_s fixed; log|det W| = sum(log_s). P ('permutation') and
sign_s are constants (CONSTANT_KEYS): they ride in the params pytree, labelled 'frozen' for the trainer's
optimizer (FlowModel.param_labels), so no update and no weight decay ever moves them, and behind
`stop_gradient`. Initialised from a random rotation, as in Glow.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from jaxgen.flows.bijector import Chain, check_batched
from jaxgen.flows.coupling import Coupling

ACTNORM_EPS = 1e-6
CONSTANT_KEYS = ("permutation", "sign_s")    # InvertibleConv1x1 parameters that are constants, never trained


def _num_positions(x) -> int:
  n = 1
  for d in x.shape[1:-1]:
    n *= d
  return n


@dataclasses.dataclass(frozen=True)
class ActNorm:

  def init(self, rng, x, cond=None):
    check_batched(x, 2, "ActNorm")
    axes = tuple(range(x.ndim - 1))
    xf = x.astype(jnp.float32)
    mean = xf.mean(axis=axes)
    std = jnp.sqrt(((xf - mean) ** 2).mean(axis=axes))
    return {"bias": -mean, "log_scale": -jnp.log(std + ACTNORM_EPS)}

  def forward(self, params, x, cond=None):
    y = (x + params["bias"]) * jnp.exp(params["log_scale"])
    ld = _num_positions(x) * jnp.sum(params["log_scale"])
    return y, jnp.broadcast_to(ld, (x.shape[0],)).astype(jnp.float32)

  def inverse(self, params, y, cond=None):
    x = y * jnp.exp(-params["log_scale"]) - params["bias"]
    ld = -_num_positions(y) * jnp.sum(params["log_scale"])
    return x, jnp.broadcast_to(ld, (y.shape[0],)).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class InvertibleConv1x1:

  def init(self, rng, x, cond=None):
    check_batched(x, 2, "InvertibleConv1x1")
    c = x.shape[-1]
    w, _ = jnp.linalg.qr(jax.random.normal(rng, (c, c), jnp.float32))
    p, lower, upper = jsl.lu(w)
    s = jnp.diag(upper)
    return {"permutation": p, "sign_s": jnp.sign(s), "lower": jnp.tril(lower, -1), "upper": jnp.triu(upper, 1),
            "log_s": jnp.log(jnp.abs(s))}

  @staticmethod
  def _factors(params):
    c = params["log_s"].shape[0]
    p = jax.lax.stop_gradient(params["permutation"])
    sign = jax.lax.stop_gradient(params["sign_s"])
    lower = jnp.tril(params["lower"], -1) + jnp.eye(c)
    upper = jnp.triu(params["upper"], 1) + jnp.diag(sign * jnp.exp(params["log_s"]))
    return p, lower, upper

  def weight(self, params):
    p, lower, upper = self._factors(params)
    return p @ lower @ upper

  def inverse_weight(self, params):
    p, lower, upper = self._factors(params)
    eye = jnp.eye(p.shape[0], dtype=p.dtype)
    u_inv = jsl.solve_triangular(upper, eye, lower=False)
    l_inv = jsl.solve_triangular(lower, eye, lower=True, unit_diagonal=True)
    return u_inv @ l_inv @ p.T

  def forward(self, params, x, cond=None):
    y = jnp.einsum("...c,dc->...d", x, self.weight(params))
    ld = _num_positions(x) * jnp.sum(params["log_s"])
    return y, jnp.broadcast_to(ld, (x.shape[0],)).astype(jnp.float32)

  def inverse(self, params, y, cond=None):
    x = jnp.einsum("...c,dc->...d", y, self.inverse_weight(params))
    ld = -_num_positions(y) * jnp.sum(params["log_s"])
    return x, jnp.broadcast_to(ld, (y.shape[0],)).astype(jnp.float32)


def glow_step(conditioner, *, coupling: str = "affine", parity: int = 0) -> Chain:
  """One step of flow: actnorm -> invertible 1x1 conv -> (affine or additive) channel coupling, sigmoid scale."""
  return Chain((ActNorm(), InvertibleConv1x1(),
                Coupling(conditioner, mask="channel", parity=parity, kind=coupling, scale="sigmoid")))
