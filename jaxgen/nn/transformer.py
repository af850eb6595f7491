"""The shared transformer of jaxgen: multi-head attention, pre-LN blocks, a text encoder, and cross-attention
from NHWC feature maps to a token context.

One transformer serves CLIP's text (and later image) tower, latent diffusion's text conditioning and
DALL-E 2's prior. Conventions:
- masks are boolean, True where a query may attend a key, shaped (B, Lq, Lk) or broadcastable to it
  ((B, 1, Lk) for a key padding mask: `padding_mask(tokens)`); `causal=True` adds the lower-triangular mask;
- a query that may attend no key at all (an all-pad context, the null caption) gets output 0 from
  MultiHeadAttention (output bias included), so a residual branch built on it leaves its input unchanged;
- logits and softmax run in float32 whatever the compute `dtype`; parameters stay float32;
- `activation`: 'gelu' (exact, erf) or 'quick_gelu' (OpenAI CLIP's x * sigmoid(1.702 x)).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any
ACTIVATIONS = ("gelu", "quick_gelu")
POOLS = ("argmax", "last_nonpad", "eos")
PAD_ID = 0


def quick_gelu(x: jnp.ndarray) -> jnp.ndarray:
  """OpenAI CLIP's GELU approximation, x * sigmoid(1.702 x)."""
  return x * jax.nn.sigmoid(1.702 * x)


def activation_fn(name: str):
  """The MLP activation called `name` (one of ACTIVATIONS)."""
  if name == "gelu":
    return lambda x: nn.gelu(x, approximate=False)
  if name == "quick_gelu":
    return quick_gelu
  raise ValueError(f"activation={name!r}; choose one of: {', '.join(ACTIVATIONS)}")


def padding_mask(tokens: jnp.ndarray) -> jnp.ndarray:
  """(B, L) token ids -> (B, 1, L) key mask, True at real tokens (id != PAD_ID = 0)."""
  chex.assert_rank(tokens, 2)
  return (tokens != PAD_ID)[:, None, :]


def causal_mask(length: int) -> jnp.ndarray:
  """(1, L, L) mask: query i may attend keys j <= i."""
  return jnp.tril(jnp.ones((length, length), bool))[None]


def combine_masks(*masks: Optional[jnp.ndarray]) -> Optional[jnp.ndarray]:
  """The logical AND of the masks that are not None (None when all are)."""
  masks = [m for m in masks if m is not None]
  if not masks:
    return None
  out = masks[0]
  for m in masks[1:]:
    out = jnp.logical_and(out, m)
  return out


def dot_product_attention(q: jnp.ndarray, k: jnp.ndarray, v: jnp.ndarray,
                          mask: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """softmax(q k^T / sqrt(d)) v per head, for q (B, Lq, H, d), k and v (B, Lk, H, d); mask (B, Lq, Lk)
  broadcastable, True = attend. Masked keys get weight 0; a query with no key to attend gets output 0."""
  chex.assert_rank([q, k, v], 4)
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32) * (q.shape[-1] ** -0.5)
  if mask is not None:
    if mask.ndim != 3:
      raise ValueError(f"attention mask has shape {tuple(mask.shape)}; it must be (B, Lq, Lk) or broadcast to it")
    mask = mask[:, None]                                   # (B, 1, Lq, Lk): the same for every head
    logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
  weights = jax.nn.softmax(logits, axis=-1)
  if mask is not None:
    weights = jnp.where(mask, weights, 0.0)                # an all-masked row would be uniform: zero it
  return jnp.einsum("bhqk,bkhd->bqhd", weights.astype(v.dtype), v)


class MultiHeadAttention(nn.Module):
  """Multi-head attention: queries from `x` (B, Lq, C), keys and values from `context` (B, Lk, D) (or from x).

  Dense q, k, v projections to `qkv_features` (default C) split over `num_heads`; `dot_product_attention`;
  a dense output projection to `out_features` (default C), zero-initialised with `zero_init_out` (a residual
  branch that starts as the identity). A query that `mask` lets attend no key gets output 0.
  """
  num_heads: int
  qkv_features: Optional[int] = None
  out_features: Optional[int] = None
  zero_init_out: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, context: Optional[jnp.ndarray] = None, *,
               mask: Optional[jnp.ndarray] = None, causal: bool = False) -> jnp.ndarray:
    chex.assert_rank(x, 3)
    context = x if context is None else context
    chex.assert_rank(context, 3)
    features = self.qkv_features or x.shape[-1]
    if features % self.num_heads:
      raise ValueError(f"attention width {features} is not divisible by num_heads={self.num_heads}")
    if causal:
      if x.shape[1] != context.shape[1]:
        raise ValueError(f"causal attention needs as many keys as queries, got {context.shape[1]} and {x.shape[1]}")
      mask = combine_masks(mask, causal_mask(x.shape[1]))
    head = (self.num_heads, features // self.num_heads)
    proj = lambda name: nn.DenseGeneral(head, dtype=self.dtype, name=name)   # noqa: E731
    q, k, v = proj("query")(x), proj("key")(context), proj("value")(context)
    h = dot_product_attention(q, k, v, mask)
    init = nn.initializers.zeros if self.zero_init_out else nn.initializers.lecun_normal()
    out = nn.DenseGeneral(self.out_features or x.shape[-1], axis=(-2, -1), dtype=self.dtype,
                          kernel_init=init, name="out")(h)
    if mask is not None:                                   # no key to attend: no output, not the bias
      attends = jnp.broadcast_to(mask.any(-1), out.shape[:2])
      out = jnp.where(attends[..., None], out, 0).astype(out.dtype)
    return out


class TransformerBlock(nn.Module):
  """Pre-LN block: x + SelfAttn(LN(x)); [x + CrossAttn(LN(x), context)]; x + MLP(LN(x)).

  The MLP is Dense(mlp_ratio * C) -> activation -> Dense(C). Cross-attention exists when `cross_attention`
  is set; `context_mask` masks it (a (B, 1, Lk) `padding_mask`), `mask` / `causal` the self-attention.
  """
  num_heads: int
  mlp_ratio: float = 4.0
  cross_attention: bool = False
  activation: str = "gelu"
  norm_eps: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, context: Optional[jnp.ndarray] = None, *, mask: Optional[jnp.ndarray] = None,
               context_mask: Optional[jnp.ndarray] = None, causal: bool = False) -> jnp.ndarray:
    chex.assert_rank(x, 3)
    width = x.shape[-1]
    ln = lambda name: nn.LayerNorm(self.norm_eps, dtype=self.dtype, name=name)   # noqa: E731
    x = x + MultiHeadAttention(self.num_heads, dtype=self.dtype, name="attn")(ln("ln_attn")(x), mask=mask,
                                                                              causal=causal)
    if self.cross_attention:
      if context is None:
        raise ValueError("this TransformerBlock has cross_attention=True but was given no context")
      x = x + MultiHeadAttention(self.num_heads, dtype=self.dtype, name="cross_attn")(
          ln("ln_cross")(x), context, mask=context_mask)
    elif context is not None:
      raise ValueError("this TransformerBlock has cross_attention=False but was given a context")
    h = nn.Dense(int(self.mlp_ratio * width), dtype=self.dtype, name="mlp_in")(ln("ln_mlp")(x))
    h = nn.Dense(width, dtype=self.dtype, name="mlp_out")(activation_fn(self.activation)(h))
    return x + h


class _ScannedBlock(nn.Module):
  """One TransformerBlock as an nn.scan body: (carry x, broadcast inputs) -> (x, None)."""
  block: dict
  causal: bool

  @nn.compact
  def __call__(self, x, context, mask, context_mask):
    return TransformerBlock(**self.block, name="block")(x, context, mask=mask, context_mask=context_mask,
                                                        causal=self.causal), None


class Transformer(nn.Module):
  """A stack of `depth` TransformerBlocks of the same settings.

  scan=False: blocks named block_0 .. block_{depth-1}. scan=True: one block under `nn.scan`, its parameters
  stacked on a leading depth axis under 'blocks/block' (one block compiled instead of `depth`); the same
  function of the same parameters (stack block_i's along axis 0).
  """
  depth: int
  num_heads: int
  mlp_ratio: float = 4.0
  cross_attention: bool = False
  activation: str = "gelu"
  norm_eps: float = 1e-5
  scan: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, context: Optional[jnp.ndarray] = None, *, mask: Optional[jnp.ndarray] = None,
               context_mask: Optional[jnp.ndarray] = None, causal: bool = False) -> jnp.ndarray:
    if self.depth < 1:
      raise ValueError(f"Transformer depth={self.depth} must be >= 1")
    block = dict(num_heads=self.num_heads, mlp_ratio=self.mlp_ratio, cross_attention=self.cross_attention,
                 activation=self.activation, norm_eps=self.norm_eps, dtype=self.dtype)
    if self.scan:
      stack = nn.scan(_ScannedBlock, variable_axes={"params": 0}, split_rngs={"params": True},
                      in_axes=(nn.broadcast, nn.broadcast, nn.broadcast), length=self.depth)
      x, _ = stack(block, causal, name="blocks")(x, context, mask, context_mask)
      return x
    for i in range(self.depth):
      x = TransformerBlock(**block, name=f"block_{i}")(x, context, mask=mask, context_mask=context_mask,
                                                       causal=causal)
    return x


def pool_index(tokens: jnp.ndarray, pool: str, eos_id: Optional[int] = None) -> jnp.ndarray:
  """(B,) end-of-text position of each caption in (B, L) `tokens`.

  'argmax': the position of the largest id (its first occurrence), OpenAI CLIP's rule, where the EOT token
  has the largest id of the vocabulary. 'last_nonpad': the last position whose id is not PAD_ID (0), for
  vocabularies without an EOT token such as the shapes data set's words; an all-pad caption gives 0. 'eos': the
  first position of the id `eos_id` (Hugging Face CLIP's rule for configs whose eos_token_id is not the legacy
  2: an added token may have a larger id than the EOT token); a caption without it gives 0.
  """
  chex.assert_rank(tokens, 2)
  if pool == "argmax":
    return jnp.argmax(tokens, axis=-1)
  if pool == "last_nonpad":
    positions = jnp.arange(tokens.shape[1])[None, :]
    return jnp.max(jnp.where(tokens != PAD_ID, positions, 0), axis=-1)
  if pool == "eos":
    if not isinstance(eos_id, int) or isinstance(eos_id, bool):
      raise ValueError(f"pool='eos' needs the end-of-text id as an integer eos_id, got eos_id={eos_id!r}")
    return jnp.argmax(tokens == eos_id, axis=-1)
  raise ValueError(f"pool={pool!r}; choose one of: {', '.join(POOLS)}")


class TextEncoder(nn.Module):
  """CLIP's text transformer: token + learned positional embeddings, a causal Transformer, a final LayerNorm.

  Returns (features (B, L, width), pooled (B, width)): the per-token features (a cross-attention context) and
  the features at each caption's end-of-text position (`pool_index(tokens, pool)`). Causal (CLIP's): padding
  needs no mask, as no position up to the end of text sees the pads after it. `causal=False` (latent
  diffusion's text encoder, whose every token feature is a context for cross-attention): every token attends
  every real token of its caption (pads masked by `padding_mask`). The projection to CLIP's joint embedding
  belongs to the model that uses the encoder.
  """
  vocab_size: int
  max_len: int
  width: int
  depth: int
  num_heads: int
  pool: str = "argmax"
  mlp_ratio: float = 4.0
  activation: str = "gelu"
  norm_eps: float = 1e-5
  scan: bool = False
  dtype: Dtype = jnp.float32
  eos_id: Optional[int] = None          # the end-of-text id of pool='eos'
  causal: bool = True

  @nn.compact
  def __call__(self, tokens: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray]:
    chex.assert_rank(tokens, 2)
    length = tokens.shape[1]
    if length > self.max_len:
      raise ValueError(f"tokens have length {length}; this TextEncoder takes at most max_len={self.max_len}")
    index = pool_index(tokens, self.pool, self.eos_id)     # checks `pool` before any parameter is made
    embed = nn.Embed(self.vocab_size, self.width, embedding_init=nn.initializers.normal(0.02), name="token_embedding")
    pos = self.param("positional_embedding", nn.initializers.normal(0.01), (self.max_len, self.width), jnp.float32)
    x = (embed(tokens) + pos[None, :length]).astype(self.dtype)
    x = Transformer(self.depth, self.num_heads, self.mlp_ratio, activation=self.activation, norm_eps=self.norm_eps,
                    scan=self.scan, dtype=self.dtype, name="transformer")(
                        x, mask=None if self.causal else padding_mask(tokens), causal=self.causal)
    x = nn.LayerNorm(self.norm_eps, dtype=self.dtype, name="ln_final")(x)
    pooled = jnp.take_along_axis(x, index[:, None, None], axis=1)[:, 0]
    return x, pooled


class CrossAttention(nn.Module):
  """Cross-attention from an NHWC feature map to a token context, with a residual connection.

  x (B, H, W, C) is flattened to (B, H*W, C), LayerNorm-ed, and attends to `context` (B, L, D) (keys and
  values projected from D); `tokens` (B, L), when given, masks the context's pads (id 0), so pads have no
  effect and an all-pad (null) caption leaves x unchanged. The zero-initialised output projection makes the
  block the identity at the start of training. Returns (B, H, W, C).
  """
  num_heads: int
  norm_eps: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, context: jnp.ndarray, tokens: Optional[jnp.ndarray] = None) -> jnp.ndarray:
    chex.assert_rank([x, context], [4, 3])
    b, height, width, c = x.shape
    if context.shape[0] != b:
      raise ValueError(f"context has batch {context.shape[0]}; the feature map has batch {b}")
    if tokens is not None and tokens.shape != context.shape[:2]:
      raise ValueError(f"tokens have shape {tuple(tokens.shape)}; the context needs {tuple(context.shape[:2])}")
    mask = None if tokens is None else padding_mask(tokens)
    h = nn.LayerNorm(self.norm_eps, dtype=self.dtype, name="norm")(x.reshape(b, height * width, c))
    h = MultiHeadAttention(self.num_heads, zero_init_out=True, dtype=self.dtype, name="attn")(h, context, mask=mask)
    return x + h.reshape(b, height, width, c)
