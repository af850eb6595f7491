"""The KL-regularised convolutional autoencoder of latent diffusion (Rombach et al. 2022, "High-Resolution Image
Synthesis with Latent Diffusion Models"): the first stage that maps images to a latent f = 2^(L-1) times smaller
in H and W, on which the second-stage diffusion model runs.

Built so that diffusers' `AutoencoderKL` (the Stable Diffusion VAE's architecture) maps onto it tensor for tensor
(jaxgen.ldm.convert_diffusers): the module and parameter names below are what that mapping targets.

  Encoder: conv_in; for each level i of `block_out_channels` `layers_per_block` residual blocks (down_{i}_block_{j})
           and, at every level but the last, a stride-2 3x3 conv with diffusers' (0, 1) padding (down_{i}_downsample);
           a mid block resnet -> single-head self-attention -> resnet (mid_block_1, mid_attn_1, mid_block_2);
           GroupNorm, SiLU, conv_out to 2 * latent_channels (the posterior's mean and log-variance).
  Decoder: conv_in; the mid block; for each level from the lowest resolution up `layers_per_block + 1` residual
           blocks (up_{i}_block_{j}, i counted as diffusers' up_blocks.i) and, at every level but the last,
           nearest-neighbour x2 + 3x3 conv (up_{i}_upsample); norm_out, SiLU, conv_out.
  AutoencoderKL: encoder, quant_conv (1x1 on the 2 * latent_channels moments), post_quant_conv (1x1), decoder.

All modules take NHWC. The residual block is diffusers' `ResnetBlock2D` without a time embedding (jaxgen.nn.layers'
ResnetBlock needs one, so a small one is here); attention, down- and upsampling are jaxgen.nn.layers' AttnBlock,
Downsample(padding=0) and Upsample, whose numerics match diffusers' (single head over the channels, softmax in
float32, scale C^-1/2; see the DDPM converter). The log-variance is clipped to [-30, 20] as diffusers'
`DiagonalGaussianDistribution`.
"""
from typing import Any, Optional, Sequence, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.nn.layers import AttnBlock, Downsample, Upsample, conv3x3, nin

Dtype = Any

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


class ResnetBlock(nn.Module):
  """diffusers' ResnetBlock2D with no time embedding: GroupNorm, SiLU, 3x3 conv, GroupNorm, SiLU, dropout, 3x3
  conv, plus the input (through a 1x1 conv, `nin_shortcut`, when the channel count changes)."""
  out_ch: Optional[int] = None
  dropout: float = 0.0
  num_groups: int = 32
  norm_eps: float = 1e-6
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    chex.assert_rank(x, 4)
    in_ch = x.shape[-1]
    out_ch = in_ch if self.out_ch is None else self.out_ch
    h = nn.swish(nn.GroupNorm(self.num_groups, epsilon=self.norm_eps, dtype=self.dtype, name="norm1")(x))
    h = conv3x3(out_ch, self.dtype, "conv1")(h)
    h = nn.swish(nn.GroupNorm(self.num_groups, epsilon=self.norm_eps, dtype=self.dtype, name="norm2")(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = conv3x3(out_ch, self.dtype, "conv2", zero_init=True)(h)
    if in_ch != out_ch:
      x = nin(out_ch, self.dtype, "nin_shortcut")(x)
    return x + h


def _check_config(block_out_channels: Sequence[int], layers_per_block: int, num_groups: int) -> None:
  if len(block_out_channels) < 1:
    raise ValueError(f"block_out_channels={tuple(block_out_channels)!r}: give at least one level")
  bad = [c for c in block_out_channels if c % num_groups]
  if bad:
    raise ValueError(f"block_out_channels={tuple(block_out_channels)!r} has {bad} not divisible by "
                     f"norm_num_groups={num_groups}; every level's channels must be a multiple of it")
  if layers_per_block < 1:
    raise ValueError(f"layers_per_block={layers_per_block!r}; must be >= 1")


class _MidBlock(nn.Module):
  """resnet -> (single-head self-attention) -> resnet at the lowest resolution, as diffusers' UNetMidBlock2D."""
  num_groups: int
  norm_eps: float
  add_attention: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, h: jnp.ndarray, train: bool) -> jnp.ndarray:
    kw = dict(num_groups=self.num_groups, norm_eps=self.norm_eps, dtype=self.dtype)
    h = ResnetBlock(name="mid_block_1", **kw)(h, train)
    if self.add_attention:
      h = AttnBlock(name="mid_attn_1", **kw)(h)
    return ResnetBlock(name="mid_block_2", **kw)(h, train)


class Encoder(nn.Module):
  """Image (B, H, W, in_channels) -> (B, H/f, W/f, 2 * latent_channels), f = 2^(len(block_out_channels) - 1)."""
  in_channels: int = 3
  latent_channels: int = 4
  block_out_channels: Tuple[int, ...] = (64,)
  layers_per_block: int = 1
  norm_num_groups: int = 32
  norm_eps: float = 1e-6
  double_z: bool = True
  mid_block_add_attention: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    chex.assert_rank(x, 4)
    if x.shape[-1] != self.in_channels:
      raise ValueError(f"Encoder input has {x.shape[-1]} channels (shape {x.shape}); in_channels={self.in_channels}")
    _check_config(self.block_out_channels, self.layers_per_block, self.norm_num_groups)
    kw = dict(num_groups=self.norm_num_groups, norm_eps=self.norm_eps, dtype=self.dtype)
    h = conv3x3(self.block_out_channels[0], self.dtype, "conv_in")(x)
    num_levels = len(self.block_out_channels)
    for i, ch in enumerate(self.block_out_channels):
      for j in range(self.layers_per_block):
        h = ResnetBlock(out_ch=ch, name=f"down_{i}_block_{j}", **kw)(h, train)
      if i != num_levels - 1:
        h = Downsample(with_conv=True, padding=0, dtype=self.dtype, name=f"down_{i}_downsample")(h)
    h = _MidBlock(add_attention=self.mid_block_add_attention, name="mid", **kw)(h, train)
    h = nn.swish(nn.GroupNorm(self.norm_num_groups, epsilon=self.norm_eps, dtype=self.dtype, name="norm_out")(h))
    out = 2 * self.latent_channels if self.double_z else self.latent_channels
    return conv3x3(out, self.dtype, "conv_out")(h)


class Decoder(nn.Module):
  """Latent (B, h, w, latent_channels) -> image (B, h*f, w*f, out_channels)."""
  out_channels: int = 3
  latent_channels: int = 4
  block_out_channels: Tuple[int, ...] = (64,)
  layers_per_block: int = 1
  norm_num_groups: int = 32
  norm_eps: float = 1e-6
  mid_block_add_attention: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    chex.assert_rank(z, 4)
    if z.shape[-1] != self.latent_channels:
      raise ValueError(f"Decoder input has {z.shape[-1]} channels (shape {z.shape}); "
                       f"latent_channels={self.latent_channels}")
    _check_config(self.block_out_channels, self.layers_per_block, self.norm_num_groups)
    kw = dict(num_groups=self.norm_num_groups, norm_eps=self.norm_eps, dtype=self.dtype)
    channels = tuple(reversed(self.block_out_channels))
    h = conv3x3(channels[0], self.dtype, "conv_in")(z)
    h = _MidBlock(add_attention=self.mid_block_add_attention, name="mid", **kw)(h, train)
    for i, ch in enumerate(channels):
      for j in range(self.layers_per_block + 1):
        h = ResnetBlock(out_ch=ch, name=f"up_{i}_block_{j}", **kw)(h, train)
      if i != len(channels) - 1:
        h = Upsample(with_conv=True, dtype=self.dtype, name=f"up_{i}_upsample")(h)
    h = nn.swish(nn.GroupNorm(self.norm_num_groups, epsilon=self.norm_eps, dtype=self.dtype, name="norm_out")(h))
    return conv3x3(self.out_channels, self.dtype, "conv_out")(h)


class AutoencoderKL(nn.Module):
  """The KL autoencoder: encode(x) -> (mean, logvar) of the diagonal Gaussian posterior, decode(z) -> x, and
  __call__(x, rng) -> (reconstruction, mean, logvar) with z drawn from the posterior (its mean when rng is None).

  `use_quant_conv` / `use_post_quant_conv` as diffusers' (the 1x1 convs around the latent; False leaves them out).
  """
  in_channels: int = 3
  out_channels: int = 3
  block_out_channels: Tuple[int, ...] = (64,)
  layers_per_block: int = 1
  latent_channels: int = 4
  norm_num_groups: int = 32
  norm_eps: float = 1e-6
  mid_block_add_attention: bool = True
  use_quant_conv: bool = True
  use_post_quant_conv: bool = True
  dtype: Dtype = jnp.float32

  def setup(self):
    common = dict(block_out_channels=tuple(self.block_out_channels), layers_per_block=self.layers_per_block,
                  latent_channels=self.latent_channels, norm_num_groups=self.norm_num_groups,
                  norm_eps=self.norm_eps, mid_block_add_attention=self.mid_block_add_attention, dtype=self.dtype)
    self.encoder = Encoder(in_channels=self.in_channels, double_z=True, **common)
    self.decoder = Decoder(out_channels=self.out_channels, **common)
    if self.use_quant_conv:
      self.quant_conv = nin(2 * self.latent_channels, self.dtype, "quant_conv")
    if self.use_post_quant_conv:
      self.post_quant_conv = nin(self.latent_channels, self.dtype, "post_quant_conv")

  @property
  def downsample_factor(self) -> int:
    """f: the latent is H/f x W/f."""
    return 2 ** (len(self.block_out_channels) - 1)

  def encode(self, x: jnp.ndarray, train: bool = False) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """(mean, logvar), each (B, H/f, W/f, latent_channels); logvar clipped to [-30, 20]."""
    moments = self.encoder(x, train)
    if self.use_quant_conv:
      moments = self.quant_conv(moments)
    mean, logvar = jnp.split(moments, 2, axis=-1)
    return mean, jnp.clip(logvar, LOGVAR_MIN, LOGVAR_MAX)

  def decode(self, z: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    if self.use_post_quant_conv:
      z = self.post_quant_conv(z)
    return self.decoder(z, train)

  def __call__(self, x: jnp.ndarray, rng: Optional[jax.Array] = None, train: bool = False
               ) -> Tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    mean, logvar = self.encode(x, train)
    z = mean if rng is None else sample_posterior(rng, mean, logvar)
    return self.decode(z, train), mean, logvar


def sample_posterior(rng: jax.Array, mean: jnp.ndarray, logvar: jnp.ndarray) -> jnp.ndarray:
  """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) (the reparameterisation, so gradients reach the encoder)."""
  eps = jax.random.normal(rng, mean.shape, mean.dtype)
  return mean + jnp.exp(0.5 * logvar) * eps


def kl_divergence(mean: jnp.ndarray, logvar: jnp.ndarray) -> jnp.ndarray:
  """KL(N(mean, exp(logvar)) || N(0, I)) per example, summed over every latent dimension but the batch:
  0.5 * sum(mean^2 + exp(logvar) - 1 - logvar) (diffusers' DiagonalGaussianDistribution.kl(), the
  regulariser of the first stage)."""
  chex.assert_equal_shape((mean, logvar))
  axes = tuple(range(1, mean.ndim))
  return 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(logvar) - 1.0 - logvar, axis=axes)
