"""Conditioner networks for coupling layers: they compute a coupling's shift and scale from the kept half.

The last layer is zero-initialised, so a coupling starts as the identity (additive, tanh scale) or as a fixed
per-dimension scale (Glow's sigmoid(h + 2)); this keeps deep flows stable at the start of training.
No batch normalisation: held-out likelihoods must not depend on running statistics (a known pitfall of
RealNVP re-implementations whose test bits/dim exploded in eval mode).

Convolutions (`SameConv`, the parameters of flax's nn.Conv: 'kernel' (k, k, C, F) and 'bias' (F,)) have two
implementations with the same parameters and the same result:
  'xla':    lax.conv_general_dilated;
  'matmul': im2col, k*k shifted copies of the padded input concatenated on channels, then one matmul.
'auto' (the default) picks 'matmul' on the CPU backend and 'xla' elsewhere. Why: flows stack their steps with
lax.scan, and on XLA's CPU backend the gradient of a convolution inside a loop body runs 10-30x slower than the
same convolution outside one (jax-ml/jax#12868); measured here, the Glow digits train step took 277 ms with
scanned native convolutions, 26 ms unrolled. Matmuls in loops do not have that problem.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

CONV_IMPLS = ("auto", "xla", "matmul")


def conv2d_same(x, kernel, impl: str = "auto"):
  """Stride-1 'SAME' 2-D convolution of NHWC `x` with an HWIO `kernel` (odd k x k)."""
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv impl={impl!r}; choose one of: {', '.join(CONV_IMPLS)}")
  if impl == "auto":
    impl = "matmul" if jax.default_backend() == "cpu" else "xla"
  kh, kw = kernel.shape[:2]
  if kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(f"kernel size {kh}x{kw} must be odd for 'SAME' padding")
  if impl == "xla":
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return im2col_same(x, kh, kw) @ kernel.reshape(kh * kw * x.shape[-1], kernel.shape[-1])


def im2col_same(x, kh: int, kw: int):
  """The (B, H, W, kh*kw*C) patches of NHWC `x` for a stride-1 'SAME' kh x kw convolution (odd sizes).

  Channel order (i, j, c), i.e. an HWIO kernel reshaped to (kh*kw*C, F) multiplies it. The one im2col of
  jaxgen: the flows' 'matmul' convolutions and benchmarks/cpu_kernels.py's U-Net experiment use it.
  """
  h, w = x.shape[1], x.shape[2]
  ph, pw = kh // 2, kw // 2
  xp = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0))) if ph or pw else x
  return jnp.concatenate([xp[:, i:i + h, j:j + w, :] for i in range(kh) for j in range(kw)], axis=-1)


class SameConv(nn.Module):
  """nn.Conv(features, (k, k), padding='SAME') with a choice of implementation (see the module docstring)."""
  features: int
  kernel_size: int = 3
  kernel_init: Callable = nn.initializers.lecun_normal()
  impl: str = "auto"

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    return conv2d_same(x, kernel, self.impl) + bias


class ConvConditioner(nn.Module):
  """conv3x3 -> relu -> conv1x1 -> relu -> `num_blocks` residual blocks -> zero-init conv3x3 to out_channels.

  With num_blocks=0 this is Glow's NN(); with num_blocks=8, features=64 it is RealNVP's residual s/t network
  (without its batch norm, see the module docstring).
  """
  features: int
  out_channels: int
  num_blocks: int = 0
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x):
    conv = lambda f, k, name, **kw: SameConv(f, k, impl=self.conv_impl, name=name, **kw)   # noqa: E731
    h = nn.relu(conv(self.features, 3, "conv_in")(x))
    h = nn.relu(conv(self.features, 1, "conv_mid")(h))
    for i in range(self.num_blocks):
      r = conv(self.features, 3, f"block{i}_conv0")(nn.relu(h))
      r = conv(self.features, 3, f"block{i}_conv1")(nn.relu(r))
      h = h + r
    if self.num_blocks:
      h = nn.relu(h)
    return conv(self.out_channels, 3, "conv_out", kernel_init=nn.initializers.zeros)(h)


class MLPConditioner(nn.Module):
  """`num_layers` relu layers of width `hidden`, then a zero-initialised linear map to out_channels."""
  hidden: int
  out_channels: int
  num_layers: int = 2

  @nn.compact
  def __call__(self, x):
    h = x
    for i in range(self.num_layers):
      h = nn.relu(nn.Dense(self.hidden, name=f"dense{i}")(h))
    return nn.Dense(self.out_channels, kernel_init=nn.initializers.zeros, name="dense_out")(h)


class MLPClassifier(nn.Module):
  """A plain classifier (the discriminative baseline for the flow classifier): relu MLP -> logits."""
  hidden: int
  num_classes: int
  num_layers: int = 2

  @nn.compact
  def __call__(self, x):
    h = x.reshape(x.shape[0], -1)
    for i in range(self.num_layers):
      h = nn.relu(nn.Dense(self.hidden, name=f"dense{i}")(h))
    return nn.Dense(self.num_classes, name="logits")(h)

