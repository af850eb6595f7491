"""StyleGAN2 networks (Karras et al. 2019, "A Style-Based Generator Architecture for GANs"; Karras et al. 2020,
"Analyzing and Improving the Image Quality of StyleGAN"), unconditional, for the GAN family
(model.kind='stylegan', jaxgen.gan.build).

Generator = mapping network + synthesis network:
- mapping: z -> pixel norm -> `mapping_layers` equalised-lr dense layers with LeakyReLU(0.2) * sqrt(2) -> w.
  It tracks the mean w (`w_avg`, collection 'buffers': a 'buffer' leaf of the GAN family) as an EMA of the
  batch's mean mapped w, updated only when the 'buffers' collection is mutable (the generator's training
  forward pass, GAN.generate(update_buffers=True)). Truncation in W: w' = w_avg + psi (w - w_avg).
  Its lower learning rate (0.01x in the papers) is the optimizer group 'mapping' (gan.extra_groups), not a
  runtime lr multiplier: under Adam the two are the same update (see `EqualDense`).
- synthesis: a learned constant 4x4 input; per resolution (4x4: one layer, then two per doubling, the first
  of which upsamples (nearest, then the 3x3 conv; StyleGAN2 uses a transposed conv with a [1,3,3,1] FIR
  filter)) a StyleGAN2 *weight-demodulated* 3x3 convolution (`modulated_conv`) whose per-input-channel style
  is an affine map of that layer's w (bias initialised at 1), per-pixel Gaussian noise scaled by a learned
  per-channel strength (initialised at 0), a bias and LeakyReLU(0.2) * sqrt(2); StyleGAN2's skip generator:
  a modulated (not demodulated) 1x1 toRGB per resolution, summed into the bilinearly upsampled RGB of the
  resolution below. Layers take ws[:, i] (num_ws = 2 * levels: conv layers and the last toRGB); a toRGB uses
  the index of the next resolution's first conv, as in StyleGAN2.
- style mixing (training only, `train=True`): with probability `mixing_prob` per example, a second latent z2
  mapped to w2 replaces w from a crossover layer c ~ U{1, ..., num_ws - 1} on (ws[:, i] = w2 for i >= c).
  StyleGAN2 draws one crossover per batch; here each example draws its own.
- outputs are linear in training (as StyleGAN2's) and clipped to [-1, 1] outside it (samples).
Randomness (noise inputs, z2, the crossover) comes from the rng stream 'noise' (`rngs={'noise': key}`).

Discriminator: StyleGAN2's residual D (`residual=True`; 'orig' without the skip branches, as StyleGAN2-ADA's
CIFAR-10 config): fromRGB 1x1, per resolution two 3x3 convs, the second after a 2x2 average pool (StyleGAN2
blurs with a FIR filter and strides), a 1x1 skip of the pooled input, the sum scaled by sqrt(1/2); at 4x4 the
minibatch standard deviation (`minibatch_stddev`), a 3x3 conv, a dense layer and the logit.

Every weight uses the equalised learning rate (Karras et al. 2018) as runtime scaling: stored ~ N(0, 1) /
lr_multiplier, multiplied at run time by lr_multiplier / sqrt(fan_in) (He's constant for a linear layer;
the sqrt(2) of the LeakyReLU is applied to the activation, as StyleGAN2 does).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.nn.progan import downsample, minibatch_stddev, pixel_norm, upsample  # noqa: F401  (shared with ProGAN)

ACT_GAIN = math.sqrt(2.0)


def lrelu(x):
  """LeakyReLU(0.2) with StyleGAN's gain sqrt(2)."""
  return nn.leaky_relu(x, 0.2) * ACT_GAIN


def upsample_nearest(x):
  return upsample(x, 2)


def upsample_bilinear(x):
  b, h, w, c = x.shape
  return jax.image.resize(x, (b, 2 * h, 2 * w, c), "bilinear")


def avg_pool2(x):
  return downsample(x, 2)


def _conv(x, w, groups: int = 1):
  return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      feature_group_count=groups)


def demodulation(weight, styles, eps: float = 1e-8):
  """StyleGAN2's demodulation factor d[b, o] = 1 / sqrt(sum_{kh, kw, i} (weight[kh, kw, i, o] s[b, i])^2 + eps)."""
  return jax.lax.rsqrt(jnp.einsum("io,bi->bo", jnp.sum(jnp.square(weight), axis=(0, 1)), jnp.square(styles)) + eps)


def modulated_conv(x, weight, styles, *, demodulate: bool = True, fused: bool = False):
  """StyleGAN2's modulated convolution (stride 1, SAME padding): per example b, the kernel
  weight[kh, kw, i, o] * styles[b, i] (times demodulation(weight, styles)[b, o] when `demodulate`).

  fused=False scales the input instead (x * s, one shared convolution, output * d: the same result, StyleGAN2's
  training path, cheaper); fused=True builds every example's kernel and runs one grouped convolution (B groups).
  x (B, H, W, I), weight (KH, KW, I, O), styles (B, I) -> (B, H, W, O)."""
  b, h, w_, i = x.shape
  kh, kw, _, o = weight.shape
  d = demodulation(weight, styles) if demodulate else None
  if not fused:
    y = _conv(x * styles[:, None, None, :].astype(x.dtype), weight)
    return y if d is None else y * d[:, None, None, :].astype(y.dtype)
  wb = weight[None] * styles[:, None, None, :, None]                    # (B, KH, KW, I, O)
  if d is not None:
    wb = wb * d[:, None, None, None, :]
  wb = jnp.transpose(wb, (1, 2, 3, 0, 4)).reshape(kh, kw, i, b * o)     # group b: output channels b*O ... b*O+O-1
  xg = jnp.transpose(x, (1, 2, 0, 3)).reshape(1, h, w_, b * i)          # group b: input channels b*I ... b*I+I-1
  y = _conv(xg, wb.astype(x.dtype), groups=b)
  return jnp.transpose(y.reshape(h, w_, b, o), (2, 0, 1, 3))


# -- equalised learning rate --------------------------------------------------------------------------------------

def _eq_init(lr_multiplier: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.normal(key, shape, dtype) / lr_multiplier
  return init


class EqualDense(nn.Module):
  """Dense layer with the equalised learning rate: kernel ~ N(0, 1) / lr_multiplier, used as kernel *
  lr_multiplier / sqrt(fan_in); bias stored as bias_init / lr_multiplier, used times lr_multiplier.
  (Under Adam, lr_multiplier m is the same update as a learning rate m times smaller for this layer.)"""
  features: int
  use_bias: bool = True
  bias_init: float = 0.0
  lr_multiplier: float = 1.0
  activation: bool = False

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1]
    kernel = self.param("kernel", _eq_init(self.lr_multiplier), (fan_in, self.features))
    y = x @ (kernel * (self.lr_multiplier / math.sqrt(fan_in))).astype(x.dtype)
    if self.use_bias:
      bias = self.param("bias", nn.initializers.constant(self.bias_init / self.lr_multiplier), (self.features,))
      y = y + (bias * self.lr_multiplier).astype(y.dtype)
    return lrelu(y) if self.activation else y


class EqualConv(nn.Module):
  """KxK convolution with the equalised learning rate (kernel ~ N(0, 1), used as kernel / sqrt(K K C_in)),
  optionally after a 2x2 average pool (`down`), a bias and LeakyReLU * sqrt(2) times `gain`."""
  features: int
  kernel_size: int = 3
  use_bias: bool = True
  activation: bool = False
  down: bool = False
  gain: float = 1.0

  @nn.compact
  def __call__(self, x):
    k, c = self.kernel_size, x.shape[-1]
    kernel = self.param("kernel", _eq_init(1.0), (k, k, c, self.features))
    if self.down:
      x = avg_pool2(x)
    y = _conv(x, (kernel / math.sqrt(k * k * c)).astype(x.dtype))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(y.dtype)
    y = lrelu(y) if self.activation else y
    return y * self.gain if self.gain != 1.0 else y


# -- generator ------------------------------------------------------------------------------------------------

class MappingNetwork(nn.Module):
  """z -> pixel norm -> `num_layers` equalised dense layers with LeakyReLU -> w; tracks w_avg (see module doc)."""
  num_layers: int = 8
  w_dim: int = 512
  w_avg_beta: float = 0.995

  @nn.compact
  def __call__(self, z, *, truncation_psi: float = 1.0, track: bool = True):
    x = pixel_norm(z.astype(jnp.float32))
    for i in range(self.num_layers):
      x = EqualDense(self.w_dim, activation=True, name=f"dense_{i}")(x)
    w_avg = self.variable("buffers", "w_avg", lambda: jnp.zeros((self.w_dim,), jnp.float32))
    if track and self.is_mutable_collection("buffers") and not self.is_initializing():
      # w_avg <- mean(w) + beta (w_avg - mean(w)), on the mapped (untruncated) w of the batch
      batch_mean = jnp.mean(jax.lax.stop_gradient(x), axis=0)
      w_avg.value = batch_mean + self.w_avg_beta * (w_avg.value - batch_mean)
    if truncation_psi != 1.0:
      x = w_avg.value + truncation_psi * (x - w_avg.value)
    return x


class ModulatedLayer(nn.Module):
  """A synthesis layer: (upsample), modulated + demodulated KxK conv, per-pixel noise with a learned
  per-channel strength, bias, LeakyReLU * sqrt(2)."""
  features: int
  up: bool = False
  kernel_size: int = 3
  fused: bool = False

  @nn.compact
  def __call__(self, x, w):
    c = x.shape[-1]
    styles = EqualDense(c, bias_init=1.0, name="affine")(w)
    kernel = self.param("kernel", _eq_init(1.0), (self.kernel_size, self.kernel_size, c, self.features))
    if self.up:
      x = upsample_nearest(x)
    x = modulated_conv(x, kernel / math.sqrt(self.kernel_size ** 2 * c), styles, demodulate=True, fused=self.fused)
    strength = self.param("noise_strength", nn.initializers.zeros, (self.features,))
    noise = jax.random.normal(self.make_rng("noise"), x.shape[:3] + (1,), x.dtype)
    x = x + noise * strength.astype(x.dtype)
    return lrelu(x + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype))


class ToRGB(nn.Module):
  """A modulated 1x1 convolution to the image channels, without demodulation, plus a bias (no activation)."""
  channels: int = 3

  @nn.compact
  def __call__(self, x, w):
    c = x.shape[-1]
    styles = EqualDense(c, bias_init=1.0, name="affine")(w)
    kernel = self.param("kernel", _eq_init(1.0), (1, 1, c, self.channels))
    y = modulated_conv(x, kernel / math.sqrt(c), styles, demodulate=False)
    return y + self.param("bias", nn.initializers.zeros, (self.channels,)).astype(y.dtype)


class SynthesisNetwork(nn.Module):
  """ws (B, num_ws, w_dim) -> images (B, 4 2^(L-1), 4 2^(L-1), image_channels), L = len(channels): the
  constant input, the modulated layers and the skip toRGBs (module doc)."""
  channels: Sequence[int] = (256, 256, 256, 256)      # per resolution, from 4x4 up
  image_channels: int = 3
  fused: bool = False

  @property
  def num_ws(self) -> int:
    return 2 * len(self.channels)

  @nn.compact
  def __call__(self, ws):
    chex.assert_rank(ws, 3)
    b = ws.shape[0]
    const = self.param("const", nn.initializers.normal(1.0), (4, 4, self.channels[0]))
    x = jnp.broadcast_to(const[None], (b,) + const.shape).astype(ws.dtype)
    x = ModulatedLayer(self.channels[0], fused=self.fused, name="conv_4")(x, ws[:, 0])
    rgb = ToRGB(self.image_channels, name="torgb_4")(x, ws[:, 1])
    i = 1
    for level, ch in enumerate(self.channels[1:], start=1):
      res = 4 * 2 ** level
      x = ModulatedLayer(ch, up=True, fused=self.fused, name=f"conv0_{res}")(x, ws[:, i])
      x = ModulatedLayer(ch, fused=self.fused, name=f"conv1_{res}")(x, ws[:, i + 1])
      rgb = upsample_bilinear(rgb) + ToRGB(self.image_channels, name=f"torgb_{res}")(x, ws[:, i + 2])
      i += 2
    return rgb


def mix_styles(w1, w2, rng, num_ws: int, prob: float):
  """ws (B, num_ws, D): w1 everywhere, except that with probability `prob` per example w2 from a crossover
  layer c ~ U{1, ..., num_ws - 1} on. Returns (ws, crossover) with crossover = num_ws where not mixed."""
  r_use, r_cut = jax.random.split(rng)
  cut = jax.random.randint(r_cut, (w1.shape[0],), 1, num_ws)
  cut = jnp.where(jax.random.uniform(r_use, (w1.shape[0],)) < prob, cut, num_ws)
  layer = jnp.arange(num_ws)[None, :, None]
  return jnp.where(layer < cut[:, None, None], w1[:, None], w2[:, None]), cut


class StyleGANGenerator(nn.Module):
  """(z, cond=None, *, train, truncation_psi) -> images; unconditional (cond must be None). Submodules
  'mapping' (its own optimizer group via gan.extra_groups) and 'synthesis'. See the module doc."""
  image_shape: Tuple[int, int, int]
  channels: Sequence[int] = (256, 256, 256, 256)
  mapping_layers: int = 8
  w_dim: int = 512
  mixing_prob: float = 0.9
  w_avg_beta: float = 0.995
  fused: bool = False

  def setup(self):
    self.mapping = MappingNetwork(self.mapping_layers, self.w_dim, self.w_avg_beta)
    self.synthesis = SynthesisNetwork(tuple(self.channels), self.image_shape[-1], self.fused)

  @property
  def num_ws(self) -> int:
    return 2 * len(self.channels)

  def __call__(self, z, cond: Optional[dict] = None, *, train: bool = False, truncation_psi: float = 1.0):
    from jaxgen import conditions
    chex.assert_rank(z, 2)
    conditions.check_cond(cond, (), z.shape[0], "StyleGANGenerator")
    w = self.mapping(z, truncation_psi=truncation_psi)
    ws = jnp.broadcast_to(w[:, None], (w.shape[0], self.num_ws, w.shape[1]))
    if train and self.mixing_prob > 0:
      w2 = self.mapping(jax.random.normal(self.make_rng("noise"), z.shape, z.dtype), track=False)
      ws, _ = mix_styles(w, w2, self.make_rng("noise"), self.num_ws, self.mixing_prob)
    self.sow("intermediates", "ws", ws)      # kept only when 'intermediates' is mutable (tests, figures)
    x = self.synthesis(ws)
    return x if train else jnp.clip(x, -1.0, 1.0)

  # methods for figures and tests: gen.apply(variables, z, method='map_latents') etc.
  def map_latents(self, z, truncation_psi: float = 1.0):
    """z (B, z_dim) -> w (B, w_dim), truncated towards the tracked w_avg by psi."""
    return self.mapping(z, truncation_psi=truncation_psi, track=False)

  def synthesize(self, ws, train: bool = False):
    """ws (B, num_ws, w_dim) or w (B, w_dim) (the same w for every layer) -> images (noise from rng 'noise')."""
    if ws.ndim == 2:
      ws = jnp.broadcast_to(ws[:, None], (ws.shape[0], self.num_ws, ws.shape[1]))
    x = self.synthesis(ws)
    return x if train else jnp.clip(x, -1.0, 1.0)


# -- discriminator --------------------------------------------------------------------------------------------

class StyleGANDiscriminator(nn.Module):
  """images (B, H, W, C) -> logits (B,): StyleGAN2's residual discriminator (or 'orig' without skips), with the
  minibatch standard deviation at 4x4. `channels`: per resolution from the image's down to 4x4."""
  channels: Sequence[int] = (256, 256, 256, 256)
  residual: bool = True
  mbstd_group: int = 4
  mbstd_channels: int = 1

  @nn.compact
  def __call__(self, x, cond: Optional[dict] = None):
    from jaxgen import conditions
    chex.assert_rank(x, 4)
    conditions.check_cond(cond, (), x.shape[0], "StyleGANDiscriminator")
    ch = tuple(self.channels)
    x = EqualConv(ch[0], 1, activation=True, name="fromrgb")(x)
    for i in range(len(ch) - 1):
      res = x.shape[1]
      if self.residual:
        skip = EqualConv(ch[i + 1], 1, use_bias=False, down=True, gain=math.sqrt(0.5), name=f"skip_{res}")(x)
      x = EqualConv(ch[i], 3, activation=True, name=f"conv0_{res}")(x)
      x = EqualConv(ch[i + 1], 3, activation=True, down=True, gain=math.sqrt(0.5) if self.residual else 1.0,
                    name=f"conv1_{res}")(x)
      if self.residual:
        x = x + skip
    if self.mbstd_group > 1:
      x = minibatch_stddev(x, self.mbstd_group, self.mbstd_channels)
    x = EqualConv(ch[-1], 3, activation=True, name="conv_4")(x)
    x = EqualDense(ch[-1], activation=True, name="fc")(x.reshape(x.shape[0], -1))
    return EqualDense(1, name="logit")(x)[:, 0]


def check_stylegan_shape(image_shape, g_channels, d_channels) -> None:
  """ValueError naming the field unless the image is square with a power-of-two side >= 4 and both channel
  lists have one entry per resolution (4x4 up to the image's)."""
  h, w, _ = image_shape
  if h != w or h < 4 or h & (h - 1):
    raise ValueError(f"model.kind='stylegan' needs square images with a power-of-two side >= 4; the data set's "
                     f"images are {tuple(image_shape)}")
  levels = int(math.log2(h)) - 1
  for name, ch in (("model.g_channels", g_channels), ("model.d_channels", d_channels)):
    if len(ch) != levels or any(int(c) < 1 for c in ch):
      raise ValueError(f"{name}={tuple(ch)}: give {levels} positive widths, one per resolution "
                       f"({', '.join(str(4 * 2 ** k) for k in range(levels))}) for {h}x{w} images")
