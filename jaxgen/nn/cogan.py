"""Coupled GAN networks (Liu & Tuzel 2016): a pair generator and a pair discriminator for two image domains.

Weight sharing is by construction: a tied layer is ONE Flax module (one parameter leaf per weight, named
`shared_*`) applied to both domains, so its gradient is the sum of both domains' gradients; an untied layer is
two modules, `a_*` and `b_*`.

CoGANGenerator(image_shape, channels, untied): the DCGAN generator's layers (jaxgen.nn.dcgan: z -> Dense to
(H / 2^n, W / 2^n, channels[0]), batch norm, ReLU; a stride-2 4x4 transposed convolution, BN, ReLU per further
width; a last stride-2 transposed convolution to C channels and tanh), of which the FIRST len(channels) + 1 -
`untied` are tied (the high-level semantics: the scene) and the last `untied` are per domain (the rendering).
Output: both domains' images side by side, (B, H, 2W, C): left domain A, right domain B, so that a sample grid
shows the pairs and the GAN family treats a pair as one image.
CoGANDiscriminator(channels, norm, untied): splits its (B, H, 2W, C) input into the two halves; the FIRST
`untied` stride-2 4x4 convolutions (LeakyReLU 0.2) are per domain, the further convolutions and the linear
logit are tied (each called once per domain, so batch norm statistics stay per domain). Output: logits (B, 2),
column 0 domain A's D on the left half, column 1 domain B's D on the right half; the GAN losses average over
all elements, i.e. the mean of the two domains' losses.
The generator's batch norm is jaxgen.nn.normalization.BatchStatNorm (batch statistics, no running averages).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import chex
import flax.linen as nn
import jax.numpy as jnp

from jaxgen.nn.dcgan import D_NORMS, dcgan_init
from jaxgen.nn.mlp import leaky_relu_02
from jaxgen.nn.normalization import BatchStatNorm
from jaxgen.nn.spectral_norm import SNConv, SNDense

DOMAINS = ("a", "b")


def split_pair(x):
  """(B, H, 2W, C) -> the domains' halves ((B, H, W, C), (B, H, W, C)); numpy or JAX."""
  w = x.shape[2] // 2
  return x[:, :, :w], x[:, :, w:]


class CoGANGenerator(nn.Module):
  image_shape: Tuple[int, int, int]      # one domain's (H, W, C)
  channels: Sequence[int] = (128, 64)
  untied: int = 1                        # the last `untied` of the len(channels) + 1 layers are per domain

  @nn.compact
  def __call__(self, z, cond=None):
    chex.assert_rank(z, 2)
    if cond is not None:
      raise ValueError("CoGANGenerator is unconditional: it takes no cond")
    h, w, c = self.image_shape
    f = 2 ** len(self.channels)
    n_layers = len(self.channels) + 1
    if not 1 <= self.untied < n_layers:
      raise ValueError(f"CoGANGenerator untied={self.untied}: must lie in [1, {n_layers - 1}] (at least one tied "
                       "and one untied layer)")

    def layer(i, x, prefix):
      if i == 0:
        x = nn.Dense((h // f) * (w // f) * self.channels[0], kernel_init=dcgan_init, name=f"{prefix}project")(x)
        x = x.reshape(x.shape[0], h // f, w // f, self.channels[0])
        return nn.relu(BatchStatNorm(name=f"{prefix}bn_0")(x))
      if i < n_layers - 1:
        x = nn.ConvTranspose(self.channels[i], (4, 4), strides=(2, 2), padding="SAME", kernel_init=dcgan_init,
                             name=f"{prefix}up_{i - 1}")(x)
        return nn.relu(BatchStatNorm(name=f"{prefix}bn_{i}")(x))
      x = nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding="SAME", kernel_init=dcgan_init, name=f"{prefix}out")(x)
      return jnp.tanh(x)

    x = z
    for i in range(n_layers - self.untied):
      x = layer(i, x, "shared_")
    outs = []
    for d in DOMAINS:
      y = x
      for i in range(n_layers - self.untied, n_layers):
        y = layer(i, y, f"{d}_")
      outs.append(y)
    return jnp.concatenate(outs, axis=2)


class CoGANDiscriminator(nn.Module):
  channels: Sequence[int] = (64, 128)
  norm: str = "none"                    # 'batch' (not on the first layer) | 'spectral' | 'none'
  untied: int = 1                       # the first `untied` of the len(channels) + 1 layers are per domain

  @nn.compact
  def __call__(self, x, cond=None):
    chex.assert_rank(x, 4)
    if cond is not None:
      raise ValueError("CoGANDiscriminator is unconditional: it takes no cond")
    if self.norm not in D_NORMS:
      raise ValueError(f"discriminator norm={self.norm!r}; choose one of: {', '.join(D_NORMS)}")
    n_layers = len(self.channels) + 1
    if not 1 <= self.untied < n_layers:
      raise ValueError(f"CoGANDiscriminator untied={self.untied}: must lie in [1, {n_layers - 1}]")
    sn = self.norm == "spectral"

    def conv_layer(i, prefix):
      """The i-th convolution (and its batch norm) as modules: one instance for a tied layer, called per domain."""
      ch = self.channels[i]
      if sn:
        return SNConv(ch, (4, 4), (2, 2), name=f"{prefix}conv_{i}"), None
      conv = nn.Conv(ch, (4, 4), strides=(2, 2), padding="SAME", kernel_init=dcgan_init, name=f"{prefix}conv_{i}")
      bn = BatchStatNorm(name=f"{prefix}bn_{i}") if self.norm == "batch" and i > 0 else None
      return conv, bn

    def apply(mods, h):
      conv, bn = mods
      h = conv(h)
      return leaky_relu_02(bn(h) if bn is not None else h)

    hs = list(split_pair(x))
    for i in range(self.untied):                                     # per domain
      hs = [apply(conv_layer(i, f"{d}_"), h) for d, h in zip(DOMAINS, hs)]
    for i in range(self.untied, len(self.channels)):                 # tied: one module, called per domain
      mods = conv_layer(i, "shared_")
      hs = [apply(mods, h) for h in hs]
    logit = SNDense(1, name="shared_logit") if sn else nn.Dense(1, kernel_init=dcgan_init, name="shared_logit")
    return jnp.stack([logit(h.reshape(h.shape[0], -1))[:, 0] for h in hs], axis=1)
