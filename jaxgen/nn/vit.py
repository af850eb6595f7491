"""The Vision Transformer image tower of CLIP (Dosovitskiy et al. 2021; OpenAI CLIP's `VisionTransformer`).

Images (B, H, W, C) -> a convolution without bias of kernel and stride `patch_size` (the patch embedding),
a learned class embedding prepended, a learned positional embedding added, `ln_pre`, a pre-LN `Transformer`
(jaxgen.nn.transformer: the one transformer of jaxgen), `ln_post` on the class token, and a linear projection
without bias to `output_dim` (None: no projection). Initialisation as OpenAI's: the class and positional
embeddings are N(0, width^-1/2); the projection is width^-1/2 * N(0, 1).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import chex
import flax.linen as nn
import jax.numpy as jnp

from jaxgen.nn.transformer import Transformer

Dtype = Any


def num_patches(image_hw: Tuple[int, int], patch_size: int) -> int:
  """Patches of a (H, W) image; ValueError unless patch_size divides both."""
  h, w = image_hw
  if patch_size < 1 or h % patch_size or w % patch_size:
    raise ValueError(f"patch_size={patch_size} must divide the image's height {h} and width {w}")
  return (h // patch_size) * (w // patch_size)


class VisionTransformer(nn.Module):
  """CLIP's ViT image tower. Returns (tokens (B, 1 + N, width) after the transformer, with the class token
  first; pooled (B, output_dim or width): ln_post of the class token, projected when output_dim is set)."""
  patch_size: int
  width: int
  depth: int
  num_heads: int
  output_dim: Optional[int] = None
  mlp_ratio: float = 4.0
  activation: str = "gelu"
  norm_eps: float = 1e-5
  scan: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray]:
    chex.assert_rank(images, 4)
    b, h, w, _ = images.shape
    n = num_patches((h, w), self.patch_size)
    p = self.patch_size
    x = nn.Conv(self.width, (p, p), strides=(p, p), padding="VALID", use_bias=False, dtype=self.dtype,
                name="conv1")(images.astype(self.dtype))
    x = x.reshape(b, n, self.width)
    scale = self.width ** -0.5
    normal = nn.initializers.normal(scale)
    cls = self.param("class_embedding", normal, (self.width,), jnp.float32)
    pos = self.param("positional_embedding", normal, (n + 1, self.width), jnp.float32)
    x = jnp.concatenate([jnp.broadcast_to(cls.astype(x.dtype), (b, 1, self.width)), x], axis=1)
    x = x + pos[None].astype(x.dtype)
    ln = lambda name: nn.LayerNorm(self.norm_eps, dtype=self.dtype, name=name)   # noqa: E731
    x = ln("ln_pre")(x)
    x = Transformer(self.depth, self.num_heads, self.mlp_ratio, activation=self.activation, norm_eps=self.norm_eps,
                    scan=self.scan, dtype=self.dtype, name="transformer")(x)
    pooled = ln("ln_post")(x[:, 0])
    if self.output_dim is not None:
      pooled = nn.Dense(self.output_dim, use_bias=False, dtype=self.dtype, kernel_init=normal, name="proj")(pooled)
    return x, pooled
