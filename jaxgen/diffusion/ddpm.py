"""DDPM (Ho et al. 2020) as a model family for the shared trainer.

The method is a frozen dataclass holding its static settings and its network; its functions are pure
functions of a params pytree. The trainer calls `init`, differentiates `loss` and calls `sample` for grids
(jaxgen.train.family). Settings are validated from the config (jaxgen.diffusion.build) before it is built.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.data.image import uint8_to_signed_unit
from jaxgen.diffusion import gaussian, samplers
from jaxgen.diffusion.schedules import DiffusionSchedule


@dataclasses.dataclass(frozen=True)
class DDPM:
  network: nn.Module                 # eps_theta(x_t, t, train=...) -> eps, e.g. jaxgen.nn.UNet
  schedule: DiffusionSchedule
  image_shape: Tuple[int, int, int]  # (H, W, C)
  variance: str = "fixed_large"      # sampler variance, see jaxgen.diffusion.samplers
  clip_x0: bool = True               # clip the predicted x_0 to [-1, 1] while sampling

  def init(self, rng, batch=None) -> Any:
    """Network parameters; only the image shape matters, so `batch` may be None."""
    x = jnp.zeros((1,) + tuple(self.image_shape), jnp.float32)
    t = jnp.zeros((1,), jnp.int32)
    return self.network.init({"params": rng}, x, t, train=False)["params"]

  def eps_fn(self, params, *, train: bool = False, rng=None):
    def fn(xt, t):
      rngs = {"dropout": rng} if train else None
      return self.network.apply({"params": params}, xt, t, train=train, rngs=rngs)
    return fn

  def loss(self, params, batch, rng, *, train: bool = True):
    """L_simple on a batch {'image': uint8 (B, H, W, C)}; returns (loss, metrics)."""
    x0 = uint8_to_signed_unit(batch["image"])
    loss_rng, dropout_rng = jax.random.split(rng)
    loss, _ = gaussian.eps_mse_loss(self.schedule, self.eps_fn(params, train=train, rng=dropout_rng), x0, loss_rng)
    return loss, {"loss": loss}

  def sample(self, params, rng, num: int):
    """`num` images in [-1, 1] by ancestral sampling with all T steps."""
    shape = (num,) + tuple(self.image_shape)
    x = samplers.ancestral_sample(self.schedule, self.eps_fn(params), rng, shape,
                                  variance=self.variance, clip_x0=self.clip_x0)
    return jnp.clip(x, -1.0, 1.0)

