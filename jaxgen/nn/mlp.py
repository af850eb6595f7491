"""A plain multi-layer perceptron, the network of the toy GANs and the MLP VAE."""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLP(nn.Module):
  """Dense layers of widths `hidden` with `activation` between them, then a linear layer of `out_features`."""
  hidden: Sequence[int]
  out_features: int
  activation: Callable = nn.relu

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = x.reshape(x.shape[0], -1)
    for i, width in enumerate(self.hidden):
      x = self.activation(nn.Dense(width, name=f"dense_{i}")(x))
    return nn.Dense(self.out_features, name="out")(x)


def leaky_relu_02(x):
  """LeakyReLU with slope 0.2 (Radford et al. 2015), the activation of every GAN discriminator here."""
  return nn.leaky_relu(x, 0.2)


class MLPLogit(MLP):
  """An MLP with one output unit, returned as (B,): the discriminator of the toy GANs."""

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return super().__call__(x)[:, 0]


class ImageMLP(MLP):
  """An MLP whose output is reshaped to (B, H, W, -1): the decoder of an MLP VAE."""
  image_hw: Sequence[int] = (8, 8)

  def __call__(self, z: jnp.ndarray) -> jnp.ndarray:
    return super().__call__(z).reshape((z.shape[0],) + tuple(self.image_hw) + (-1,))
