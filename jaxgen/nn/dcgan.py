"""DCGAN networks (Radford et al. 2015), optionally class-conditional (conditional batch norm in G, a
projection discriminator, Miyato & Koyama 2018).

Generator: z -> Dense to (H / 2^n, W / 2^n, channels[0]), BN, ReLU; then for each further width a stride-2
4x4 transposed convolution, BN, ReLU; a last stride-2 transposed convolution to C channels and tanh
(n = len(channels) upsamplings). Discriminator: stride-2 4x4 convolutions of widths `channels` with
LeakyReLU 0.2, normalised by `norm` ('batch': BN on every layer but the first, as in the paper; 'spectral':
spectral norm on every layer; 'none'), then a linear logit (+ <embed(y), features> when conditional).
Both take the condition as a dict (jaxgen.conditions): cond['label'] when num_classes > 0, else None.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import chex
import flax.linen as nn
import jax.numpy as jnp

from jaxgen.nn.mlp import leaky_relu_02
from jaxgen.nn.normalization import BatchStatNorm
from jaxgen.nn.spectral_norm import SNConv, SNDense

D_NORMS = ("batch", "spectral", "none")
dcgan_init = nn.initializers.normal(0.02)     # the paper: all weights from N(0, 0.02)


def check_dcgan_shape(image_shape: Tuple[int, int, int], channels: Sequence[int], what: str) -> None:
  h, w, _ = image_shape
  f = 2 ** len(channels)
  if not channels or h % f or w % f or h // f < 1:
    raise ValueError(f"{what}.channels={tuple(channels)}: image shape {tuple(image_shape)} must be divisible by "
                     f"2**len(channels)={f}")


def _labels(cond, num_classes: int, batch: int, what: str):
  """cond['label'] of a class-conditional network (None when unconditional), checked (jaxgen.conditions)."""
  from jaxgen import conditions
  conditions.check_cond(cond, ("label",) if num_classes else (), batch, f"{what}(num_classes={num_classes})")
  return cond["label"].astype(jnp.int32) if num_classes else None


class DCGANGenerator(nn.Module):
  image_shape: Tuple[int, int, int]
  channels: Sequence[int] = (512, 256, 128)
  num_classes: int = 0

  @nn.compact
  def __call__(self, z, cond: Optional[dict] = None):
    chex.assert_rank(z, 2)
    labels = _labels(cond, self.num_classes, z.shape[0], "DCGANGenerator")
    h, w, c = self.image_shape
    f = 2 ** len(self.channels)
    x = nn.Dense((h // f) * (w // f) * self.channels[0], kernel_init=dcgan_init, name="project")(z)
    x = x.reshape(z.shape[0], h // f, w // f, self.channels[0])
    x = nn.relu(BatchStatNorm(self.num_classes, name="bn_0")(x, labels))
    for i, ch in enumerate(self.channels[1:]):
      x = nn.ConvTranspose(ch, (4, 4), strides=(2, 2), padding="SAME", kernel_init=dcgan_init, name=f"up_{i}")(x)
      x = nn.relu(BatchStatNorm(self.num_classes, name=f"bn_{i + 1}")(x, labels))
    x = nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding="SAME", kernel_init=dcgan_init, name="out")(x)
    return jnp.tanh(x)


def discriminator_convs(x, channels: Sequence[int], norm: str):
  """The DCGAN discriminator's stride-2 4x4 convolutions (`conv_<i>`) with LeakyReLU 0.2, normalised by `norm`
  ('batch': `bn_<i>` on every layer but the first; 'spectral': spectral norm; 'none'). Called from inside a
  compact module's __call__, whose parameters they become."""
  for i, ch in enumerate(channels):
    if norm == "spectral":
      x = SNConv(ch, (4, 4), (2, 2), name=f"conv_{i}")(x)
    else:
      x = nn.Conv(ch, (4, 4), strides=(2, 2), padding="SAME", kernel_init=dcgan_init, name=f"conv_{i}")(x)
      if norm == "batch" and i > 0:
        x = BatchStatNorm(name=f"bn_{i}")(x)
    x = leaky_relu_02(x)
  return x


class DCGANDiscriminator(nn.Module):
  channels: Sequence[int] = (128, 256, 512)
  norm: str = "batch"
  num_classes: int = 0

  @nn.compact
  def __call__(self, x, cond: Optional[dict] = None):
    chex.assert_rank(x, 4)
    labels = _labels(cond, self.num_classes, x.shape[0], "DCGANDiscriminator")
    if self.norm not in D_NORMS:
      raise ValueError(f"discriminator norm={self.norm!r}; choose one of: {', '.join(D_NORMS)}")
    sn = self.norm == "spectral"
    x = discriminator_convs(x, self.channels, self.norm)
    feats = x.reshape(x.shape[0], -1)
    out = (SNDense(1, name="logit") if sn else nn.Dense(1, kernel_init=dcgan_init, name="logit"))(feats)[:, 0]
    if self.num_classes > 0:
      embed = nn.Embed(self.num_classes, feats.shape[-1], embedding_init=dcgan_init, name="projection")(labels)
      out = out + jnp.sum(embed * feats, axis=-1)
    return out
