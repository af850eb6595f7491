"""Convolutional encoder and decoder for VAEs on small images (8x8 digits, 32x32 CIFAR-10).

`ConvEncoder` halves the resolution `len(channels)` times with stride-2 3x3 convolutions and maps the
result to `out_features` (for a VAE: 2 * latent_dim, the posterior mean and log-variance).
`ConvDecoder` mirrors it: a dense layer to a (H / 2^n, W / 2^n, channels[-1]) map, stride-2 transposed
convolutions back to (H, W), and a 3x3 convolution to `out_channels` (the decoder's per-pixel parameters).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import chex
import flax.linen as nn
import jax.numpy as jnp


def check_conv_shape(image_shape: Tuple[int, int, int], channels: Sequence[int]) -> None:
  """ValueError naming the values unless H and W are divisible by 2 ** len(channels)."""
  h, w, _ = image_shape
  f = 2 ** len(channels)
  if not channels or h % f or w % f:
    raise ValueError(f"image shape {tuple(image_shape)} must be divisible by 2**len(channels)={f} "
                     f"(channels={tuple(channels)}, need at least one level)")


class ConvEncoder(nn.Module):
  channels: Sequence[int]
  out_features: int

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    chex.assert_rank(x, 4)
    for i, ch in enumerate(self.channels):
      x = nn.swish(nn.Conv(ch, (3, 3), padding="SAME", name=f"conv_{i}")(x))
      x = nn.swish(nn.Conv(ch, (4, 4), strides=(2, 2), padding="SAME", name=f"down_{i}")(x))
    return nn.Dense(self.out_features, name="out")(x.reshape(x.shape[0], -1))


class ConvDecoder(nn.Module):
  image_shape: Tuple[int, int, int]
  channels: Sequence[int]            # as in the encoder; used in reverse
  out_channels: int

  @nn.compact
  def __call__(self, z: jnp.ndarray) -> jnp.ndarray:
    chex.assert_rank(z, 2)
    h, w, _ = self.image_shape
    f = 2 ** len(self.channels)
    chans = list(self.channels)[::-1]
    x = nn.swish(nn.Dense((h // f) * (w // f) * chans[0], name="in")(z)).reshape(z.shape[0], h // f, w // f, chans[0])
    for i, ch in enumerate(chans):
      x = nn.swish(nn.ConvTranspose(ch, (4, 4), strides=(2, 2), padding="SAME", name=f"up_{i}")(x))
      x = nn.swish(nn.Conv(ch, (3, 3), padding="SAME", name=f"conv_{i}")(x))
    return nn.Conv(self.out_channels, (3, 3), padding="SAME", name="out")(x)
