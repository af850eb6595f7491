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


class MLPDenoiser(nn.Module):
  """The network of diffusion on vectors (2-D points, latent vectors, embeddings): (x (B, D), t (B,), cond)
  -> (B, D) float32.

  The timestep's sinusoidal embedding (and, with num_classes > 0, a learned embedding of cond['label'] in
  [0, num_classes], num_classes being the null class) enters each of `depth` residual blocks
  (h + Dense(silu(Dense(silu(h + Dense(temb)))))), between a linear input layer and a zero-initialised linear
  output, so the untrained network predicts 0.
  """
  hidden: int = 128
  depth: int = 3
  temb_dim: int = 64
  num_classes: int = 0
  dropout: float = 0.0

  @property
  def cond_features(self):
    return ("label",) if self.num_classes else ()

  @nn.compact
  def __call__(self, x: jnp.ndarray, t: jnp.ndarray, cond=None, *, train: bool = False) -> jnp.ndarray:
    from jaxgen import conditions
    from jaxgen.nn.embeddings import sinusoidal_embedding
    if x.ndim != 2:
      raise ValueError(f"MLPDenoiser takes vectors (B, D); got shape {tuple(x.shape)}")
    conditions.check_cond(cond, self.cond_features, x.shape[0], f"MLPDenoiser(num_classes={self.num_classes})")
    temb = nn.swish(nn.Dense(self.hidden, name="temb")(sinusoidal_embedding(t, self.temb_dim)))
    if self.num_classes:
      temb = temb + nn.Embed(self.num_classes + 1, self.hidden, name="label_embed")(cond["label"].astype(jnp.int32))
    h = nn.Dense(self.hidden, name="dense_in")(x.astype(jnp.float32))
    for i in range(self.depth):
      r = nn.swish(h + nn.Dense(self.hidden, name=f"block_{i}_temb")(temb))
      r = nn.swish(nn.Dense(self.hidden, name=f"block_{i}_dense_0")(r))
      r = nn.Dropout(self.dropout, deterministic=not train)(r)
      h = h + nn.Dense(self.hidden, name=f"block_{i}_dense_1")(r)
    return nn.Dense(x.shape[-1], kernel_init=nn.initializers.zeros, name="dense_out")(nn.swish(h))
