"""The text-conditional DCGAN of Reed et al. 2016 ("Generative Adversarial Text to Image Synthesis", sec. 3.1).

Both players read a caption's text embedding phi(t) as cond['embedding'] (B, D) (here a frozen CLIP's text
embedding, jaxgen.conditioners.ClipTextCondition) and first compress it with a fully connected layer to
`text_dim` (128 in the paper) followed by LeakyReLU 0.2 (each player its own layer).
Generator: [z, compressed phi(t)] concatenated, then the DCGAN generator (jaxgen.nn.dcgan.DCGANGenerator:
Dense to 4x4, BN, ReLU, stride-2 transposed convolutions, tanh).
Discriminator: the DCGAN discriminator's stride-2 4x4 convolutions (LeakyReLU 0.2; batch norm on every layer but
the first, or spectral norm, or none) down to 4x4; the compressed embedding replicated spatially and
depth-concatenated; a 1x1 convolution (the last width) + LeakyReLU 0.2; a 4x4 convolution to the logit over the
4x4 map (computed as the equal dense layer over the flattened 4x4 map: a 4x4 'VALID' convolution of a 4x4 input).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import chex
import flax.linen as nn
import jax.numpy as jnp

from jaxgen import conditions
from jaxgen.nn.dcgan import D_NORMS, DCGANGenerator, dcgan_init, discriminator_convs
from jaxgen.nn.mlp import leaky_relu_02
from jaxgen.nn.normalization import BatchStatNorm
from jaxgen.nn.spectral_norm import SNConv, SNDense


def _embedding(cond, batch: int, what: str):
  conditions.check_cond(cond, ("embedding",), batch, what)
  return jnp.asarray(cond["embedding"], jnp.float32)


class TextCompression(nn.Module):
  """phi(t) -> LeakyReLU_0.2(W phi(t) + b), `features` wide (Reed et al.: 128)."""
  features: int = 128
  spectral: bool = False

  @nn.compact
  def __call__(self, e):
    layer = SNDense(self.features, name="dense") if self.spectral else nn.Dense(self.features, kernel_init=dcgan_init,
                                                                                 name="dense")
    return leaky_relu_02(layer(e))


class TextDCGANGenerator(nn.Module):
  image_shape: Tuple[int, int, int]
  channels: Sequence[int] = (512, 256, 128)
  text_dim: int = 128
  cond_features: Tuple[str, ...] = ("embedding",)

  @nn.compact
  def __call__(self, z, cond):
    chex.assert_rank(z, 2)
    h = TextCompression(self.text_dim, name="text")(_embedding(cond, z.shape[0], "TextDCGANGenerator"))
    return DCGANGenerator(self.image_shape, self.channels, 0, name="dcgan")(jnp.concatenate([z, h], axis=-1))


class TextDCGANDiscriminator(nn.Module):
  channels: Sequence[int] = (128, 256, 512)
  norm: str = "batch"
  text_dim: int = 128
  cond_features: Tuple[str, ...] = ("embedding",)

  @nn.compact
  def __call__(self, x, cond):
    chex.assert_rank(x, 4)
    if self.norm not in D_NORMS:
      raise ValueError(f"discriminator norm={self.norm!r}; choose one of: {', '.join(D_NORMS)}")
    sn = self.norm == "spectral"
    h = TextCompression(self.text_dim, sn, name="text")(_embedding(cond, x.shape[0], "TextDCGANDiscriminator"))
    x = discriminator_convs(x, self.channels, self.norm)
    b, hh, ww, _ = x.shape
    x = jnp.concatenate([x, jnp.broadcast_to(h[:, None, None, :], (b, hh, ww, h.shape[-1]))], axis=-1)
    width = self.channels[-1]
    if sn:
      x = SNConv(width, (1, 1), (1, 1), name="joint")(x)
    else:
      x = nn.Conv(width, (1, 1), kernel_init=dcgan_init, name="joint")(x)
      if self.norm == "batch":
        x = BatchStatNorm(name="bn_joint")(x)
    x = leaky_relu_02(x)
    feats = x.reshape(b, -1)                      # the 4x4 convolution to one logit over the whole 4x4 map
    return (SNDense(1, name="logit") if sn else nn.Dense(1, kernel_init=dcgan_init, name="logit"))(feats)[:, 0]
