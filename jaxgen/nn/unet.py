"""The DDPM U-Net of Ho et al. 2020 (the official `hojonathanho/diffusion` `unet.model`).

With the defaults (the CIFAR-10 network) on 32x32x3 images it has 35,746,307
parameters, the published count.
"""
import math
from typing import Any, Optional, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import conditions
from jaxgen.nn.embeddings import sinusoidal_embedding
from jaxgen.nn.layers import AttnBlock, Downsample, ResnetBlock, Upsample, conv3x3, default_kernel_init

Dtype = Any


def check_unet_config(image_size: int, ch: int, ch_mult: Sequence[int], num_groups: int,
                      attn_resolutions: Sequence[int] = ()) -> None:
  """Raise `ValueError` naming the bad value if a U-Net config cannot be built.

  Checks: `ch_mult` is non-empty with positive entries; `ch`, `num_groups` and
  `image_size` are positive; `image_size` is divisible by the down-sampling
  factor `2**(len(ch_mult) - 1)`; `num_groups` divides every channel count
  (`ch` and each `ch * m`); and each of `attn_resolutions` is a resolution the
  network visits (otherwise the attention would silently never be applied).
  """
  ch_mult = tuple(ch_mult)
  if not ch_mult:
    raise ValueError("ch_mult=() is empty; the U-Net needs at least one level, e.g. ch_mult=(1, 2, 2, 2)")
  bad = [m for m in ch_mult if not isinstance(m, (int, np.integer)) or m <= 0]
  if bad:
    raise ValueError(f"ch_mult={ch_mult} has entries {bad}; every channel multiplier must be a positive int")
  if ch <= 0:
    raise ValueError(f"ch={ch} must be a positive int")
  if num_groups <= 0:
    raise ValueError(f"num_groups={num_groups} must be a positive int")
  if image_size <= 0:
    raise ValueError(f"image_size={image_size} must be a positive int")
  factor = 2 ** (len(ch_mult) - 1)
  if image_size % factor:
    raise ValueError(
        f"image_size={image_size} is not divisible by the U-Net's down-sampling factor {factor} "
        f"(ch_mult={ch_mult}); use an image size that is a multiple of {factor} or fewer levels")
  channels = sorted({ch} | {ch * m for m in ch_mult})
  bad_channels = [c for c in channels if c % num_groups]
  if bad_channels:
    raise ValueError(
        f"num_groups={num_groups} does not divide the channel counts {bad_channels} "
        f"(ch={ch}, ch_mult={ch_mult} give channel counts {channels}); num_groups must divide "
        f"every one of them")
  resolutions = [image_size // 2 ** i for i in range(len(ch_mult))]
  unreachable = [r for r in attn_resolutions if r not in resolutions]
  if unreachable:
    raise ValueError(
        f"attn_resolutions={tuple(attn_resolutions)} contains {unreachable}, which the U-Net never "
        f"visits for image_size={image_size}, ch_mult={ch_mult}; allowed resolutions are {resolutions}")


def count_params(params: chex.ArrayTree) -> int:
  """Total number of scalars in a pytree of arrays (or `jax.ShapeDtypeStruct`s)."""
  return int(sum(math.prod(np.shape(leaf)) for leaf in jax.tree_util.tree_leaves(params)))


class UNet(nn.Module):
  """The DDPM noise-prediction U-Net (Ho et al. 2020, CIFAR-10 defaults).

  `__call__(x, t, cond=None, *, train)` maps NHWC images `x` (B, H, W, C) and timesteps `t` (B,) to
  (B, H, W, out_ch) float32; `cond` is a condition dict (jaxgen.conditions) or None. Dropout draws from the 'dropout' rng collection when `train=True` and is off
  otherwise. `dtype` is the compute dtype; parameters stay float32.

  Class-conditional with `num_classes > 0` (Ho & Salimans 2022, as in Dhariwal & Nichol's code): a learned
  embedding of `cond['label']` (B,) in [0, num_classes] is added to the timestep embedding; label
  `num_classes` is the null class that classifier-free guidance trains and samples with. The U-Net reads
  `cond_features` (('label',) when num_classes > 0) and refuses a condition with other features.

  Text-conditional with `text_vocab > 0` (Rombach et al. 2022's text-to-image recipe): `cond['tokens']`
  (B, L) caption ids (0 = pad, L <= text_max_len) go through a small non-causal transformer text encoder
  trained with the U-Net (jaxgen.nn.transformer.TextEncoder: `text_width`, `text_depth`, `text_heads`), and
  after every self-attention block (each resolution of `attn_resolutions` and the middle) a cross-attention
  block (jaxgen.nn.transformer.CrossAttention, `cross_attn_heads` heads) lets the feature map attend the
  caption's token features. The null caption (all pads) is the unconditional model: the cross-attention
  blocks leave their input unchanged for it.

  Embedding-conditional with `embed_dim > 0` (unCLIP's decoder, Ramesh et al. 2022, GLIDE's way): `cond['embedding']`
  (B, embed_dim), e.g. a CLIP image embedding, is projected into the timestep embedding (added, as the class
  embedding is) and into `embed_tokens` extra context tokens of width `text_width` that the cross-attention
  blocks attend (beside the caption's tokens when the U-Net is also text-conditional, or alone). The null
  embedding is zeros (what embedding dropout trains for classifier-free guidance): its projections are their
  biases, a learned unconditional model.

  `norm_eps`, `flip_sin_to_cos`, `freq_shift` and `downsample_padding` are diffusers' `UNet2DModel` options
  of those names; the defaults are the official network's (and diffusers' `google/ddpm-cifar10-32` config).
  `remat=True` rematerialises every residual and attention block in the backward pass (same parameters, same
  outputs and gradients), to keep less activation memory where the compiler's scheduler allows it.
  """
  ch: int = 128
  ch_mult: Sequence[int] = (1, 2, 2, 2)
  num_res_blocks: int = 2
  attn_resolutions: Sequence[int] = (16,)
  dropout: float = 0.1
  num_groups: int = 32
  out_ch: Optional[int] = None
  resample_with_conv: bool = True
  num_classes: int = 0
  text_vocab: int = 0
  text_max_len: int = 0
  text_width: int = 64
  text_depth: int = 2
  text_heads: int = 4
  cross_attn_heads: int = 4
  embed_dim: int = 0
  embed_tokens: int = 4
  norm_eps: float = 1e-6
  flip_sin_to_cos: bool = False
  freq_shift: float = 1.0
  downsample_padding: int = 0
  remat: bool = False
  dtype: Dtype = jnp.float32

  @property
  def cond_features(self):
    return ((("label",) if self.num_classes else ()) + (("tokens",) if self.text_vocab else ())
            + (("embedding",) if self.embed_dim else ()))

  @property
  def embedding_dim(self) -> int:
    """The width of cond['embedding'] (0: not embedding-conditional)."""
    return self.embed_dim

  @nn.compact
  def __call__(self, x: jnp.ndarray, t: jnp.ndarray, cond: Optional[dict] = None, *,
               train: bool) -> jnp.ndarray:
    chex.assert_rank(x, 4)
    chex.assert_shape(t, (x.shape[0],))
    conditions.check_cond(cond, self.cond_features, x.shape[0], f"UNet(num_classes={self.num_classes}"
                          + (f", text_vocab={self.text_vocab}" if self.text_vocab else "")
                          + (f", embed_dim={self.embed_dim}" if self.embed_dim else "") + ")")
    if self.embed_dim and tuple(cond["embedding"].shape[1:]) != (self.embed_dim,):
      raise ValueError(f"cond['embedding'] has shape {tuple(cond['embedding'].shape)}; UNet(embed_dim="
                       f"{self.embed_dim}) takes (B, {self.embed_dim})")
    _, height, width, in_ch = x.shape
    # Structural checks only: attn_resolutions that are never visited are left to
    # check_unet_config, as in the original network.
    for size in {height, width}:
      check_unet_config(size, self.ch, self.ch_mult, self.num_groups)
    out_ch = in_ch if self.out_ch is None else self.out_ch
    num_levels = len(self.ch_mult)

    # remat: each residual and attention block is a jax.checkpoint, so the backward pass recomputes its
    # activations instead of keeping them (+17% FLOPs on the paper network; its memory: docs/accelerators.md).
    # `train` (argument 3, counting self) stays static.
    res_cls = nn.remat(ResnetBlock, static_argnums=(3,)) if self.remat else ResnetBlock
    attn_cls = nn.remat(AttnBlock) if self.remat else AttnBlock

    def resnet_block(h, out, name):
      return res_cls(out_ch=out, dropout=self.dropout, num_groups=self.num_groups, norm_eps=self.norm_eps,
                     dtype=self.dtype, name=name)(h, temb, train)

    context = tokens = None
    if self.text_vocab:
      from jaxgen.nn.transformer import TextEncoder
      tokens = cond["tokens"].astype(jnp.int32)
      context, _ = TextEncoder(self.text_vocab, self.text_max_len or tokens.shape[1], self.text_width,
                               self.text_depth, self.text_heads, pool="last_nonpad", causal=False, dtype=self.dtype,
                               name="text_encoder")(tokens)

    embedding = None
    if self.embed_dim:
      embedding = cond["embedding"].astype(self.dtype)
      extra = nn.Dense(self.embed_tokens * self.text_width, dtype=self.dtype, name="embed_tokens")(embedding)
      extra = extra.reshape(x.shape[0], self.embed_tokens, self.text_width)
      ones = jnp.ones((x.shape[0], self.embed_tokens), jnp.int32)     # never masked: not pads
      context, tokens = ((extra, ones) if context is None else
                         (jnp.concatenate([context, extra], axis=1), jnp.concatenate([tokens, ones], axis=1)))

    def attn_block(h, name):
      h = attn_cls(num_groups=self.num_groups, norm_eps=self.norm_eps, dtype=self.dtype, name=name)(h)
      if context is not None:
        from jaxgen.nn.transformer import CrossAttention
        h = CrossAttention(self.cross_attn_heads, dtype=self.dtype, name=name + "_cross")(h, context, tokens)
      return h

    # Timestep embedding (plus the class embedding when conditional).
    temb = sinusoidal_embedding(t, self.ch, flip_sin_to_cos=self.flip_sin_to_cos, freq_shift=self.freq_shift)
    temb = nn.Dense(4 * self.ch, dtype=self.dtype, kernel_init=default_kernel_init, name="temb_dense0")(temb)
    temb = nn.Dense(4 * self.ch, dtype=self.dtype, kernel_init=default_kernel_init,
                    name="temb_dense1")(nn.swish(temb))
    if self.num_classes:
      temb = temb + nn.Embed(self.num_classes + 1, 4 * self.ch, dtype=self.dtype,
                             name="label_embed")(cond["label"].astype(jnp.int32))
    if embedding is not None:
      temb = temb + nn.Dense(4 * self.ch, dtype=self.dtype, name="embed_temb")(embedding)

    # Down path.
    hs = [conv3x3(self.ch, self.dtype, "conv_in")(x.astype(self.dtype))]
    for level in range(num_levels):
      for block in range(self.num_res_blocks):
        h = resnet_block(hs[-1], self.ch * self.ch_mult[level], f"down_{level}_block_{block}")
        if h.shape[1] in self.attn_resolutions:
          h = attn_block(h, f"down_{level}_attn_{block}")
        hs.append(h)
      if level != num_levels - 1:
        hs.append(Downsample(self.resample_with_conv, padding=self.downsample_padding, dtype=self.dtype,
                             name=f"down_{level}_downsample")(hs[-1]))

    # Middle.
    h = hs[-1]
    h = resnet_block(h, None, "mid_block_1")
    h = attn_block(h, "mid_attn_1")
    h = resnet_block(h, None, "mid_block_2")

    # Up path.
    for level in reversed(range(num_levels)):
      for block in range(self.num_res_blocks + 1):
        h = resnet_block(jnp.concatenate([h, hs.pop()], axis=-1), self.ch * self.ch_mult[level],
                         f"up_{level}_block_{block}")
        if h.shape[1] in self.attn_resolutions:
          h = attn_block(h, f"up_{level}_attn_{block}")
      if level != 0:
        h = Upsample(self.resample_with_conv, dtype=self.dtype, name=f"up_{level}_upsample")(h)
    assert not hs, "every skip connection must be consumed"

    # End.
    h = nn.swish(nn.GroupNorm(self.num_groups, epsilon=self.norm_eps, dtype=self.dtype, name="norm_out")(h))
    h = conv3x3(out_ch, self.dtype, "conv_out", zero_init=True)(h)
    return h.astype(jnp.float32)
