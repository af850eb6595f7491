"""Building blocks of the DDPM U-Net (Ho et al. 2020): residual, attention and resampling layers.

All blocks take NHWC inputs. Kernels use the original initialiser,
`variance_scaling(1.0, 'fan_avg', 'uniform')`, biases start at zero, and the
last layer of each residual branch starts at zero so every block begins as the
identity. `dtype` is the compute dtype; parameters stay float32.
"""
from typing import Any, Optional

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any

default_kernel_init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
zeros_init = nn.initializers.zeros


def conv3x3(features: int, dtype: Dtype, name: str, *, strides: int = 1,
            zero_init: bool = False) -> nn.Conv:
  """3x3 convolution with SAME padding and the DDPM initialisers."""
  return nn.Conv(features, (3, 3), strides=(strides, strides), padding="SAME", dtype=dtype,
                 kernel_init=zeros_init if zero_init else default_kernel_init,
                 bias_init=zeros_init, name=name)


def nin(features: int, dtype: Dtype, name: str, *, zero_init: bool = False) -> nn.Dense:
  """Network-in-network layer: a dense map over the channel axis (a 1x1 convolution)."""
  return nn.Dense(features, dtype=dtype,
                  kernel_init=zeros_init if zero_init else default_kernel_init,
                  bias_init=zeros_init, name=name)


class ResnetBlock(nn.Module):
  """Pre-activation residual block conditioned on a timestep embedding.

  GroupNorm, swish, 3x3 conv, + Dense(swish(temb)) per channel, GroupNorm, swish,
  dropout, zero-initialised 3x3 conv; the shortcut is a NIN (or a 3x3 conv with
  `conv_shortcut`) when the channel count changes.
  """
  out_ch: Optional[int] = None
  dropout: float = 0.0
  num_groups: int = 32
  conv_shortcut: bool = False
  norm_eps: float = 1e-6
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, temb: jnp.ndarray, train: bool) -> jnp.ndarray:
    chex.assert_rank(x, 4)
    chex.assert_rank(temb, 2)
    chex.assert_equal(x.shape[0], temb.shape[0])
    in_ch = x.shape[-1]
    out_ch = in_ch if self.out_ch is None else self.out_ch

    h = nn.swish(nn.GroupNorm(self.num_groups, epsilon=self.norm_eps, dtype=self.dtype, name="norm1")(x))
    h = conv3x3(out_ch, self.dtype, "conv1")(h)
    h = h + nin(out_ch, self.dtype, "temb_proj")(nn.swish(temb))[:, None, None, :]
    h = nn.swish(nn.GroupNorm(self.num_groups, epsilon=self.norm_eps, dtype=self.dtype, name="norm2")(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = conv3x3(out_ch, self.dtype, "conv2", zero_init=True)(h)

    if in_ch != out_ch:
      if self.conv_shortcut:
        x = conv3x3(out_ch, self.dtype, "conv_shortcut")(x)
      else:
        x = nin(out_ch, self.dtype, "nin_shortcut")(x)
    return x + h


class AttnBlock(nn.Module):
  """Single-head self-attention over the H*W positions, with a residual connection.

  GroupNorm, then NIN projections q, k, v; softmax(q k^T / sqrt(C)) v; a
  zero-initialised NIN output projection. The softmax runs in float32.
  """
  num_groups: int = 32
  norm_eps: float = 1e-6
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    chex.assert_rank(x, 4)
    b, height, width, c = x.shape
    h = nn.GroupNorm(self.num_groups, epsilon=self.norm_eps, dtype=self.dtype, name="norm")(x)
    q = nin(c, self.dtype, "q")(h).reshape(b, height * width, c)
    k = nin(c, self.dtype, "k")(h).reshape(b, height * width, c)
    v = nin(c, self.dtype, "v")(h).reshape(b, height * width, c)
    logits = jnp.einsum("bqc,bkc->bqk", q, k).astype(jnp.float32) * (c ** -0.5)
    weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    h = jnp.einsum("bqk,bkc->bqc", weights, v).reshape(b, height, width, c)
    h = nin(c, self.dtype, "proj_out", zero_init=True)(h)
    return x + h


class Downsample(nn.Module):
  """Halve H and W: 3x3 conv with stride 2, or 2x2 average pooling.

  `padding` of the conv as diffusers' `downsample_padding`: 0 pads one row and column at the bottom and right
  only (the official DDPM code's TF SAME padding on even sizes); 1 pads one on every side.
  """
  with_conv: bool = True
  padding: int = 0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    chex.assert_rank(x, 4)
    if self.with_conv:
      if self.padding not in (0, 1):
        raise ValueError(f"Downsample padding={self.padding!r}; choose 0 (bottom/right, as TF SAME) or 1 (all sides)")
      pad = ((0, 1), (0, 1)) if self.padding == 0 else ((1, 1), (1, 1))
      return nn.Conv(x.shape[-1], (3, 3), strides=(2, 2), padding=pad, dtype=self.dtype,
                     kernel_init=default_kernel_init, bias_init=zeros_init, name="conv")(x)
    return nn.avg_pool(x, (2, 2), strides=(2, 2), padding="SAME")


class Upsample(nn.Module):
  """Double H and W by nearest-neighbour repetition, then a 3x3 conv if `with_conv`."""
  with_conv: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    chex.assert_rank(x, 4)
    x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    if self.with_conv:
      x = conv3x3(x.shape[-1], self.dtype, "conv")(x)
    return x
