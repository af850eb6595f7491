"""A small ResNet image tower in the manner of OpenAI CLIP's `ModifiedResNet` (Radford et al. 2021, sec. 2.4).

OpenAI's changes to ResNet-D, kept here:
- a stem of three 3x3 convolutions (the first with stride `stem_stride`) instead of one 7x7, then an average
  pool of `stem_stride` (OpenAI: stride 2 and pool 2, a factor 4; shapes' 32x32 images use 1 and 1);
- anti-aliased downsampling: a bottleneck block that halves the resolution does so with an average pool of 2
  after its 3x3 convolution (which keeps stride 1), and its shortcut pools before its 1x1 projection;
- attention pooling instead of global average pooling: one multi-head attention layer whose query is the
  mean of the final feature map (plus a learned positional embedding, as are the keys and values: one per
  position and one for the mean), its output projected to `output_dim`.
One difference, said: GroupNorm (32 groups at most, fewer when a layer is narrower) instead of BatchNorm, so
the tower has no batch statistics to carry, and an embedding depends on its own image only (a contrastive loss
over a batch normalised by that same batch's statistics can learn from the statistics; CLIP with BatchNorm
needs care across devices). Bottlenecks expand by 4 as ResNet-50's; stage i has `width * 2**i` middle channels
and stride 1 for the first stage, 2 after.
Returns (tokens (B, 1 + h*w, C): the attention pool's input sequence, the mean first; pooled (B, output_dim)).
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import chex
import flax.linen as nn
import jax.numpy as jnp

from jaxgen.nn.transformer import MultiHeadAttention

Dtype = Any
EXPANSION = 4


def _groups(channels: int) -> int:
  g = min(32, channels)
  while channels % g:
    g -= 1
  return g


class Bottleneck(nn.Module):
  """1x1 -> 3x3 -> [avg pool 2 when stride 2] -> 1x1 (x4), each conv followed by GroupNorm; ReLU after the
  first two and after the sum; the shortcut is [avg pool] -> 1x1 conv -> GroupNorm when the shape changes."""
  planes: int
  stride: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    conv = lambda c, k, name: nn.Conv(c, (k, k), padding="SAME", use_bias=False, dtype=self.dtype,  # noqa: E731
                                      name=name)
    norm = lambda c, name: nn.GroupNorm(_groups(c), dtype=self.dtype, name=name)                   # noqa: E731
    out = nn.relu(norm(self.planes, "norm1")(conv(self.planes, 1, "conv1")(x)))
    out = nn.relu(norm(self.planes, "norm2")(conv(self.planes, 3, "conv2")(out)))
    if self.stride > 1:
      out = nn.avg_pool(out, (self.stride, self.stride), (self.stride, self.stride))
    out = norm(self.planes * EXPANSION, "norm3")(conv(self.planes * EXPANSION, 1, "conv3")(out))
    identity = x
    if self.stride > 1 or x.shape[-1] != self.planes * EXPANSION:
      if self.stride > 1:
        identity = nn.avg_pool(identity, (self.stride, self.stride), (self.stride, self.stride))
      identity = norm(self.planes * EXPANSION, "down_norm")(conv(self.planes * EXPANSION, 1, "down_conv")(identity))
    return nn.relu(out + identity)


class AttentionPool(nn.Module):
  """CLIP's attention pooling: the mean of the (B, h, w, C) map, prepended to its positions, plus a positional
  embedding (N(0, C^-1/2) as OpenAI's); one multi-head attention whose only query is the mean token; its
  output projected to `output_dim`. Returns (the (B, 1 + hw, C) sequence, the (B, output_dim) pooled)."""
  num_heads: int
  output_dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray]:
    b, h, w, c = x.shape
    x = x.reshape(b, h * w, c)
    x = jnp.concatenate([x.mean(axis=1, keepdims=True), x], axis=1)
    pos = self.param("positional_embedding", nn.initializers.normal(c ** -0.5), (1 + h * w, c), jnp.float32)
    x = x + pos[None].astype(x.dtype)
    pooled = MultiHeadAttention(self.num_heads, out_features=self.output_dim, dtype=self.dtype,
                                name="attn")(x[:, :1], x)
    return x, pooled[:, 0]


class CLIPResNet(nn.Module):
  """The ResNet image tower. Images (B, H, W, C) in [-1, 1] -> (tokens, pooled (B, output_dim))."""
  stage_sizes: Sequence[int]
  width: int
  num_heads: int
  output_dim: int
  stem_stride: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray]:
    chex.assert_rank(images, 4)
    _, h, w, _ = images.shape
    down = self.stem_stride ** 2 * 2 ** (len(self.stage_sizes) - 1)
    if not self.stage_sizes or min(self.stage_sizes) < 1 or h % down or w % down:
      raise ValueError(f"stage_sizes={tuple(self.stage_sizes)} with stem_stride={self.stem_stride} downsample by "
                       f"{down}, which must divide the image's {h}x{w} (and every stage needs >= 1 block)")
    out_width = self.width * 2 ** (len(self.stage_sizes) - 1) * EXPANSION
    if out_width % self.num_heads:
      raise ValueError(f"the last stage's {out_width} channels are not divisible by num_heads={self.num_heads}")
    x = images.astype(self.dtype)
    s = self.stem_stride
    for i, (c, stride) in enumerate(((self.width // 2, s), (self.width // 2, 1), (self.width, 1))):
      x = nn.Conv(c, (3, 3), strides=(stride, stride), padding="SAME", use_bias=False, dtype=self.dtype,
                  name=f"stem_conv{i + 1}")(x)
      x = nn.relu(nn.GroupNorm(_groups(c), dtype=self.dtype, name=f"stem_norm{i + 1}")(x))
    if s > 1:
      x = nn.avg_pool(x, (s, s), (s, s))
    for i, blocks in enumerate(self.stage_sizes):
      for j in range(blocks):
        x = Bottleneck(self.width * 2 ** i, stride=2 if (i > 0 and j == 0) else 1, dtype=self.dtype,
                       name=f"layer{i + 1}_{j}")(x)
    return AttentionPool(self.num_heads, self.output_dim, dtype=self.dtype, name="attnpool")(x)
