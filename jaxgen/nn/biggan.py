"""BigGAN networks (Brock et al. 2019) at 32x32: a residual generator with a shared class embedding, a
hierarchical latent and conditional batch norm with running statistics, a residual projection discriminator,
SAGAN self-attention (Zhang et al. 2019) in both, spectral norm on every weight of both (Miyato et al. 2018).

Generator (the paper's CIFAR architecture with ch=256, g_mults=(4, 4, 4)): z is split into len(g_mults) + 1
chunks when `hier` (one to the first linear layer, one per up-block); each block's condition vector is
[z chunk, shared(y)] (shared(y): one class embedding of `shared_dim` for every block), projected by a linear
layer to the gains (1 + ...) and biases of that block's two conditional batch norms. An up-block is
BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3 plus an upsampled 1x1-conv shortcut. Self-attention follows the
block whose output has `attn_res` pixels a side (0: none). Then BN-ReLU-conv3x3-tanh.
Discriminator: residual blocks (pre-activation ReLU-conv-ReLU-conv, then 2x2 average pooling where `d_down`;
the first block without the leading ReLU, its shortcut pooled before its 1x1 conv), self-attention after the
block whose output has `attn_res` pixels a side, ReLU, global sum pooling, a linear logit plus the projection
term <embed(y), h> (Miyato & Koyama 2018; the embedding spectrally normalised, as BigGAN's).

Batch norm (`CondBatchNorm`): in training, the batch's statistics; an exponential moving average of them (the
running statistics) is kept in the 'batch_stats' collection and updated only when that collection is mutable
(the GAN family's generator update, `GAN.generate(update_buffers=True)`: a 'buffer' leaf, checkpointed). With
`use_running_average=True` the layer normalises with whatever 'batch_stats' holds: the running statistics, or
standing statistics put in their place (jaxgen.gan.gan.GAN.standing_stats: batch statistics sown into the
'moments' collection over many batches in training mode and averaged).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.nn.spectral_norm import SNConv, SNDense

MOMENTS = "moments"         # the collection that batch-mode BN layers sow their batch statistics into


class CondBatchNorm(nn.Module):
  """Batch norm with per-example gain and bias ((B, C) each: y = x_hat * gain + bias) or, when they are None,
  learned vectors; running statistics in 'batch_stats' (mean, biased var), EMA with `momentum`."""
  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, gain=None, bias=None, use_running_average: bool = False):
    c = x.shape[-1]
    axes = tuple(range(x.ndim - 1))
    ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
    ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
    xf = x.astype(jnp.float32)
    if use_running_average:
      mean, var = ra_mean.value, ra_var.value
    else:
      mean = xf.mean(axes)
      var = jnp.square(xf - mean).mean(axes)
      if not self.is_initializing():
        self.sow(MOMENTS, "mean", mean)
        self.sow(MOMENTS, "var", var)
        if self.is_mutable_collection("batch_stats"):
          ra_mean.value = self.momentum * ra_mean.value + (1.0 - self.momentum) * mean
          ra_var.value = self.momentum * ra_var.value + (1.0 - self.momentum) * var
    y = (xf - mean) * jax.lax.rsqrt(var + self.epsilon)
    if gain is None:
      y = y * self.param("scale", nn.initializers.ones, (c,)) + self.param("bias", nn.initializers.zeros, (c,))
    else:
      shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (c,)
      y = y * gain.reshape(shape) + bias.reshape(shape)
    return y.astype(x.dtype)


def upsample2(x):
  b, h, w, c = x.shape
  return jax.image.resize(x, (b, 2 * h, 2 * w, c), "nearest")


def avgpool2(x):
  return nn.avg_pool(x, (2, 2), (2, 2))


class SelfAttention(nn.Module):
  """SAGAN's self-attention: x + gamma * o(softmax(theta(x) phi(x)^T) g(x)), phi and g max-pooled 2x2,
  theta/phi at C/8 channels, g at C/2, gamma initialised at 0; spectral-normalised 1x1 convolutions."""

  @nn.compact
  def __call__(self, x):
    b, h, w, c = x.shape
    ck, cv = max(c // 8, 1), max(c // 2, 1)
    theta = SNConv(ck, (1, 1), name="theta")(x).reshape(b, h * w, ck)
    phi = nn.max_pool(SNConv(ck, (1, 1), name="phi")(x), (2, 2), (2, 2)).reshape(b, -1, ck)
    g = nn.max_pool(SNConv(cv, (1, 1), name="g")(x), (2, 2), (2, 2)).reshape(b, -1, cv)
    attn = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", theta, phi), axis=-1)
    o = SNConv(c, (1, 1), name="o")(jnp.einsum("bqk,bkc->bqc", attn, g).reshape(b, h, w, cv))
    return x + self.param("gamma", nn.initializers.zeros, ()) * o


class GBlock(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x, cvec, use_running_average: bool = False):
    """cvec: (B, D) condition vector ([z chunk, shared(y)]) or None (unconditional BN)."""
    cin = x.shape[-1]

    def bn(h, name, ch):
      if cvec is None:
        return CondBatchNorm(name=name)(h, use_running_average=use_running_average)
      gain = 1.0 + SNDense(ch, name=f"{name}_gain")(cvec)
      bias = SNDense(ch, name=f"{name}_bias")(cvec)
      return CondBatchNorm(name=name)(h, gain, bias, use_running_average=use_running_average)

    h = upsample2(nn.relu(bn(x, "bn_0", cin)))
    h = SNConv(self.features, (3, 3), name="conv_0")(h)
    h = SNConv(self.features, (3, 3), name="conv_1")(nn.relu(bn(h, "bn_1", self.features)))
    return h + SNConv(self.features, (1, 1), name="shortcut")(upsample2(x))


class DBlock(nn.Module):
  features: int
  down: bool = True
  preactivation: bool = True

  @nn.compact
  def __call__(self, x):
    h = nn.relu(x) if self.preactivation else x
    h = SNConv(self.features, (3, 3), name="conv_0")(h)
    h = SNConv(self.features, (3, 3), name="conv_1")(nn.relu(h))
    if self.down:
      h = avgpool2(h)
    s = x
    if self.preactivation:          # conv then pool (BigGAN's D blocks); the first block pools first
      if s.shape[-1] != self.features or self.down:
        s = SNConv(self.features, (1, 1), name="shortcut")(s)
      s = avgpool2(s) if self.down else s
    else:
      s = avgpool2(s) if self.down else s
      s = SNConv(self.features, (1, 1), name="shortcut")(s)
    return h + s


def _labels(cond, num_classes: int, batch: int, what: str):
  from jaxgen import conditions
  conditions.check_cond(cond, ("label",) if num_classes else (), batch, f"{what}(num_classes={num_classes})")
  return cond["label"].astype(jnp.int32) if num_classes else None


def z_chunks(z, num_blocks: int, hier: bool):
  """(z for the first linear layer, [z chunk of each block]): len(z) / (num_blocks + 1) each when `hier`,
  else all of z to the linear layer and nothing to the blocks."""
  if not hier:
    return z, [None] * num_blocks
  parts = jnp.split(z, num_blocks + 1, axis=-1)
  return parts[0], parts[1:]


def check_biggan_shape(image_shape: Tuple[int, int, int], g_mults: Sequence[int], d_down: Sequence[bool],
                       latent_dim: int, hier: bool, attn_res: int) -> None:
  """ValueError naming the field when the geometry does not fit (called by the GAN family's validator)."""
  h, w, _ = image_shape
  f = 2 ** len(g_mults)
  if not g_mults or h % f or w % f or h != w:
    raise ValueError(f"model.g_mults={tuple(g_mults)}: image shape {tuple(image_shape)} must be square and divisible "
                     f"by 2**len(g_mults)={f}")
  if hier and latent_dim % (len(g_mults) + 1):
    raise ValueError(f"model.latent_dim={latent_dim} must be a multiple of len(model.g_mults) + 1 = "
                     f"{len(g_mults) + 1} with model.hier=True (one chunk for the linear layer, one per up-block)")
  fd = 2 ** sum(bool(d) for d in d_down)
  if not d_down or h % fd:
    raise ValueError(f"model.d_down={tuple(d_down)}: image side {h} must be divisible by 2**(number of True)={fd}")
  g_res = [h // f * 2 ** (i + 1) for i in range(len(g_mults))]
  d_res, side = [], h
  for down in d_down:
    side = side // 2 if down else side
    d_res.append(side)
  if attn_res and (attn_res not in g_res or attn_res not in d_res):
    raise ValueError(f"model.attn_res={attn_res} must be the output side of a generator block ({g_res}) and of a "
                     f"discriminator block ({d_res}); or 0 (no attention)")


class BigGANGenerator(nn.Module):
  image_shape: Tuple[int, int, int]
  ch: int = 256
  g_mults: Sequence[int] = (4, 4, 4)
  num_classes: int = 0
  shared_dim: int = 128
  hier: bool = True
  attn_res: int = 16

  @nn.compact
  def __call__(self, z, cond: Optional[dict] = None, use_running_average: bool = False):
    chex.assert_rank(z, 2)
    labels = _labels(cond, self.num_classes, z.shape[0], "BigGANGenerator")
    h, w, c = self.image_shape
    n = len(self.g_mults)
    base = h // 2 ** n
    z0, zs = z_chunks(z, n, self.hier)
    shared = nn.Embed(self.num_classes, self.shared_dim, name="shared")(labels) if self.num_classes else None
    x = SNDense(base * base * self.ch * self.g_mults[0], name="linear")(z0)
    x = x.reshape(z.shape[0], base, base, self.ch * self.g_mults[0])
    for i, m in enumerate(self.g_mults):
      parts = [p for p in (zs[i], shared) if p is not None]
      cvec = jnp.concatenate(parts, axis=-1) if parts else None
      x = GBlock(self.ch * m, name=f"block_{i}")(x, cvec, use_running_average)
      if self.attn_res and x.shape[1] == self.attn_res:     # sides grow: one block has it
        x = SelfAttention(name="attention")(x)
    x = nn.relu(CondBatchNorm(name="bn_out")(x, use_running_average=use_running_average))
    return jnp.tanh(SNConv(c, (3, 3), name="conv_out")(x))


class BigGANDiscriminator(nn.Module):
  ch: int = 256
  d_mults: Sequence[int] = (4, 4, 4, 4)
  d_down: Sequence[bool] = (True, True, False, False)
  num_classes: int = 0
  attn_res: int = 16

  @nn.compact
  def __call__(self, x, cond: Optional[dict] = None):
    chex.assert_rank(x, 4)
    labels = _labels(cond, self.num_classes, x.shape[0], "BigGANDiscriminator")
    attended = False
    for i, (m, down) in enumerate(zip(self.d_mults, self.d_down)):
      x = DBlock(self.ch * m, bool(down), preactivation=i > 0, name=f"block_{i}")(x)
      if self.attn_res and x.shape[1] == self.attn_res and not attended:   # after the first block at attn_res
        x, attended = SelfAttention(name="attention")(x), True
    h = jnp.sum(nn.relu(x), axis=(1, 2))                       # global sum pooling
    out = SNDense(1, name="linear")(h)[:, 0]
    if self.num_classes:
      # a spectrally normalised embedding (BigGAN's SNEmbedding): one-hot labels through an SN linear layer
      embed = SNDense(h.shape[-1], name="projection")(jax.nn.one_hot(labels, self.num_classes))
      out = out + jnp.sum(embed * h, axis=-1)
    return out

