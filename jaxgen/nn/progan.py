"""Progressive GAN networks (Karras et al. 2018): growing generator and discriminator, equalised learning rate,
pixel-wise feature normalisation and minibatch standard deviation.

Resolutions 4, 8, ..., `resolution` (levels 0 .. L-1). Every level's blocks are created at init; a call is
given the growth `level` (a float scalar: an integer p at level p's resolution, p - 1 + alpha while level p
fades in with weight alpha, jaxgen.gan.growth) and runs only the branch of level ceil(level): the training step
passes that branch as a static `branch=` (the trainer compiles one step per phase: jaxgen.train.family), so the
step holds only its level's layers; without it (sampling at a traced level) the call goes through `nn.switch`,
whose branches use the im2col convolution on a CPU (XLA's native CPU convolution inside control flow is the ~10x
slow path of jax-ml/jax#12868; outside it the native one is the faster, measured in docs/gans.md).
Shapes never change with the level: the generator's output is nearest-upsampled to the full resolution (a
4x4 phase draws 8x8 blocks of pixels), and the discriminator average-pools its full-resolution input back to the
level's resolution (exact for such an image).

Generator (the paper's Table 2): z -> pixel norm -> dense to 4x4 (as the paper's 4x4 transposed convolution)
-> LReLU, PN -> conv 3x3 -> LReLU, PN; per further level: nearest 2x upsampling, two conv 3x3 -> LReLU, PN;
a 1x1 toRGB per level (linear). While level p fades in: (1 - alpha) * upsample(toRGB_{p-1}(h_{p-1})) + alpha *
toRGB_p(h_p). Its growth level is kept in the 'growth' collection (`level`, a buffer updated by the training
forward pass): a call without `level` (sampling) uses it, so a sample grid shows the phase the run is in.
Discriminator, the mirror image: fromRGB (1x1) at the level's resolution; per level, two conv 3x3 and 2x
average pooling (the first level's block faded in from the pooled image's fromRGB); at 4x4 the minibatch
standard deviation channel, conv 3x3, dense (4x4 -> channels), dense to one logit. LReLU 0.2 throughout.
Equalised learning rate: weights drawn from N(0, 1) and scaled at run time by He's constant gain/sqrt(fan_in)
(`lr_multiplier` scales both the weights and the bias: StyleGAN's mapping network uses 0.01).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.nn.conditioners import conv2d_same

LRELU = 0.2


def lrelu(x):
  return nn.leaky_relu(x, LRELU)


def pixel_norm(x, axis: int = -1, eps: float = 1e-8):
  """x / sqrt(mean(x^2) + eps) along `axis`: each pixel's feature vector over its channels (the paper's eq. 2);
  StyleGAN's mapping network normalises z with it."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + eps)


def minibatch_stddev(x, group_size: int = 4, num_channels: int = 1, eps: float = 1e-8):
  """x (B, H, W, C) with `num_channels` features appended (ProGAN: one; StyleGAN's may split the channels into
  several): per group of G = min(group_size, B) examples (example n is in group n mod (B / G), as in the papers'
  code), the standard deviation of every feature over the group, averaged over pixels and the channel slice,
  given to each of the group's examples at every pixel. B must divide by G."""
  b, h, w, c = x.shape
  g = min(group_size, b)
  if b % g:
    raise ValueError(f"minibatch stddev: batch {b} is not a multiple of the group size {g}")
  f = num_channels
  y = x.astype(jnp.float32).reshape(g, b // g, h, w, f, c // f)
  y = jnp.sqrt(jnp.var(y, axis=0) + eps)                       # (B/G, H, W, F, C/F)
  y = jnp.mean(y, axis=(1, 2, 4))                              # (B/G, F)
  y = jnp.tile(y, (g, 1))[:, None, None, :]                   # (B, 1, 1, F): example n gets group n mod B/G
  return jnp.concatenate([x, jnp.broadcast_to(y, (b, h, w, f)).astype(x.dtype)], axis=-1)


def he_scale(fan_in: int, gain: float = math.sqrt(2.0), lr_multiplier: float = 1.0) -> float:
  """The run-time weight scale of the equalised learning rate: gain / sqrt(fan_in) (times lr_multiplier)."""
  return gain / math.sqrt(fan_in) * lr_multiplier


class EqualizedDense(nn.Module):
  features: int
  gain: float = math.sqrt(2.0)
  lr_multiplier: float = 1.0
  bias_init: float = 0.0

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1]
    w = self.param("kernel", nn.initializers.normal(1.0 / self.lr_multiplier), (fan_in, self.features))
    b = self.param("bias", nn.initializers.constant(self.bias_init / self.lr_multiplier), (self.features,))
    return x @ (w * he_scale(fan_in, self.gain, self.lr_multiplier)) + b * self.lr_multiplier


class EqualizedConv(nn.Module):
  features: int
  kernel_size: int = 3
  gain: float = math.sqrt(2.0)

  @nn.compact
  def __call__(self, x, impl: str = "auto"):
    k, cin = self.kernel_size, x.shape[-1]
    w = self.param("kernel", nn.initializers.normal(1.0), (k, k, cin, self.features))
    b = self.param("bias", nn.initializers.zeros, (self.features,))
    # impl 'auto' (im2col matmuls on a CPU) inside the level's nn.switch: XLA's native CPU convolution is ~10x
    # slower inside control flow (jax-ml/jax#12868, docs/flows.md); 'xla' for a static branch
    return conv2d_same(x, w * he_scale(k * k * cin, self.gain), impl=impl) + b


def upsample(x, factor: int = 2):
  """Nearest-neighbour upsampling of (B, H, W, C) by an integer factor."""
  return x if factor == 1 else jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def downsample(x, factor: int = 2):
  """Average pooling of (B, H, W, C) over factor x factor blocks."""
  if factor == 1:
    return x
  b, h, w, c = x.shape
  return x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def num_levels(resolution: int) -> int:
  """Levels 4x4 .. resolution: log2(resolution) - 1."""
  if resolution < 4 or resolution & (resolution - 1):
    raise ValueError(f"resolution={resolution} must be a power of two >= 4")
  return int(math.log2(resolution)) - 1


def static_branch_alpha(level, branch: int):
  """The fade-in weight of a static `branch` at a traced `level` (level in (branch - 1, branch]): the alpha of
  branch_and_alpha, computed the same way."""
  return 1.0 - (jnp.float32(branch) - jnp.asarray(level, jnp.float32))


def branch_and_alpha(level):
  """The level's branch (ceil(level), an int32 scalar) and its fade-in weight alpha in (0, 1] (1 once the
  level's resolution is fully in)."""
  level = jnp.asarray(level, jnp.float32)
  b = jnp.ceil(level)
  return b.astype(jnp.int32), 1.0 - (b - level)


def _check_branch(branch, n: int) -> int:
  if not isinstance(branch, int) or not 0 <= branch < n:
    raise ValueError(f"branch={branch!r}: a static level index in 0 .. {n - 1}")
  return branch


class ProGANGenerator(nn.Module):
  resolution: int = 32
  channels: Sequence[int] = (512, 512, 512, 512)   # per level: 4x4, 8x8, ...
  out_channels: int = 3

  def setup(self):
    n = num_levels(self.resolution)
    if len(self.channels) != n:
      raise ValueError(f"ProGANGenerator: channels={tuple(self.channels)} must have one width per level "
                       f"(4x4 .. {self.resolution}x{self.resolution}: {n})")
    c0 = self.channels[0]
    self.dense = EqualizedDense(16 * c0, gain=math.sqrt(2.0) / 4)   # the paper's 4x4 transposed-conv gain
    self.convs = [(EqualizedConv(self.channels[0]),)] + [
        (EqualizedConv(ch), EqualizedConv(ch)) for ch in self.channels[1:]]
    self.to_rgb = [EqualizedConv(self.out_channels, 1, gain=1.0) for _ in self.channels]
    self.level = self.variable("growth", "level", lambda: jnp.zeros((), jnp.float32))

  def _features(self, z, p, impl):
    """The hidden features of levels 0 .. p (list)."""
    x = pixel_norm(z)
    h = pixel_norm(lrelu(self.dense(x).reshape(z.shape[0], 4, 4, self.channels[0])))
    h = pixel_norm(lrelu(self.convs[0][0](h, impl)))
    hs = [h]
    for q in range(1, p + 1):
      h = upsample(h)
      for conv in self.convs[q]:
        h = pixel_norm(lrelu(conv(h, impl)))
      hs.append(h)
    return hs

  def branch(self, p: int, z, alpha, impl: str = "auto"):
    hs = self._features(z, p, impl)
    rgb = self.to_rgb[p](hs[p], impl)
    if p > 0:
      rgb = (1.0 - alpha) * upsample(self.to_rgb[p - 1](hs[p - 1], impl)) + alpha * rgb
    return upsample(rgb, self.resolution // (4 * 2 ** p))

  def __call__(self, z, cond: Optional[dict] = None, level=None, branch: Optional[int] = None):
    from jaxgen import conditions
    conditions.check_cond(cond, (), z.shape[0], "ProGANGenerator")
    n = num_levels(self.resolution)
    if self.is_initializing():                         # every level's parameters (each level's toRGB too)
      return [self.branch(p, z, 0.5) for p in range(n)][-1]
    if level is None:
      if branch is not None:
        raise ValueError("ProGANGenerator: a static branch needs its level")
      level = self.level.value
    elif self.is_mutable_collection("growth"):
      self.level.value = jnp.asarray(level, jnp.float32)
    if branch is not None:                             # the training step of one phase: its layers only
      return self.branch(_check_branch(branch, n), z, static_branch_alpha(level, branch), "xla")
    b, alpha = branch_and_alpha(level)
    return nn.switch(b, [lambda m, z, a, p=p: m.branch(p, z, a) for p in range(n)], self, z, alpha)


class ProGANDiscriminator(nn.Module):
  resolution: int = 32
  channels: Sequence[int] = (512, 512, 512, 512)   # per level: 4x4, 8x8, ... (the level's input width)
  mbstd_group: int = 4

  def setup(self):
    n = num_levels(self.resolution)
    if len(self.channels) != n:
      raise ValueError(f"ProGANDiscriminator: channels={tuple(self.channels)} must have one width per level "
                       f"(4x4 .. {self.resolution}x{self.resolution}: {n})")
    self.from_rgb = [EqualizedConv(ch, 1) for ch in self.channels]
    # level q > 0: conv at its width, conv to the next-lower level's width, then 2x average pooling
    self.convs = [None] + [(EqualizedConv(self.channels[q]), EqualizedConv(self.channels[q - 1]))
                           for q in range(1, n)]
    self.final_conv = EqualizedConv(self.channels[0])
    self.final_dense = EqualizedDense(self.channels[0])
    self.logit = EqualizedDense(1, gain=1.0)

  def branch(self, p: int, x, alpha, impl: str = "auto"):
    x_p = downsample(x, self.resolution // (4 * 2 ** p))
    h = lrelu(self.from_rgb[p](x_p, impl))
    for q in range(p, 0, -1):
      for conv in self.convs[q]:
        h = lrelu(conv(h, impl))
      h = downsample(h)
      if q == p:                                        # fade the new level in from the pooled image's fromRGB
        h = alpha * h + (1.0 - alpha) * lrelu(self.from_rgb[p - 1](downsample(x_p), impl))
    h = minibatch_stddev(h, self.mbstd_group)
    h = lrelu(self.final_conv(h, impl))
    h = lrelu(self.final_dense(h.reshape(h.shape[0], -1)))
    return self.logit(h)[:, 0]

  def __call__(self, x, cond: Optional[dict] = None, level=None, branch: Optional[int] = None):
    from jaxgen import conditions
    conditions.check_cond(cond, (), x.shape[0], "ProGANDiscriminator")
    n = num_levels(self.resolution)
    if self.is_initializing():                         # every level's parameters (each level's fromRGB too)
      return [self.branch(p, x, 0.5) for p in range(n)][-1]
    if level is None:
      raise ValueError("ProGANDiscriminator needs the growth level (jaxgen.gan.growth)")
    if branch is not None:                             # the training step of one phase: its layers only
      return self.branch(_check_branch(branch, n), x, static_branch_alpha(level, branch), "xla")
    b, alpha = branch_and_alpha(level)
    return nn.switch(b, [lambda m, x, a, p=p: m.branch(p, x, a) for p in range(n)], self, x, alpha)
