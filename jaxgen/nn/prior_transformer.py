"""DALL-E 2's diffusion prior network (Ramesh et al. 2022, "Hierarchical Text-Conditional Image Generation with
CLIP Latents", sec. 2.2): a decoder-only Transformer that denoises a CLIP image embedding given its caption.

The paper's prior is a causal Transformer over the sequence

  [caption token features (L), the caption's CLIP text embedding (1), the timestep embedding (1),
   the noised CLIP image embedding (1), a learned final query token (1)]

whose output at the final token, projected, is the prediction (the paper predicts the clean embedding x0:
the DDPM family's `diffusion.prediction='x0'`; this network only maps inputs to a (B, D) vector, whatever it
is trained to predict). It takes the DDPM family's network signature for vectors, that of MLPDenoiser:
`(x (B, D), t (B,), cond, train=False) -> (B, D) float32`, so `config.model.kind='prior_transformer'` is the
DDPM on (D,) event shapes with this network (jaxgen.diffusion.build).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgen.nn.transformer import Transformer

Dtype = Any


class PriorTransformer(nn.Module):
  """unCLIP's prior: (x (B, embed_dim) noised image embedding, t (B,), cond) -> (B, embed_dim) float32.

  Conditions (jaxgen.conditions; `cond_features` says which the network reads, None when neither):
  - text_embed_dim > 0: cond['embedding'] (B, text_embed_dim) float32, the caption's CLIP text embedding
    (null: zeros);
  - num_tokens > 0: cond['token_features'] (B, num_tokens, token_dim) float32, the caption's per-token text
    encoder features (null: zeros).
  Each sequence element is projected to `width` by its own Dense layer (the timestep's sinusoidal embedding by
  Dense -> swish -> Dense), the query token is a learned vector, and a learned positional embedding is added
  before `depth` pre-LN causal TransformerBlocks (jaxgen.nn.transformer): each token sees only the ones
  before it, so the query, last, sees everything. The final LayerNorm and a zero-initialised projection of
  the query's output give the prediction: the untrained prior predicts 0. `train` is accepted for the
  family's signature; the network has no dropout.
  """
  width: int
  depth: int
  num_heads: int
  embed_dim: int                 # D: the CLIP image embedding x and the prediction
  text_embed_dim: int = 0        # width of cond['embedding']; 0: not conditioned on a text embedding
  num_tokens: int = 0            # L of cond['token_features']; 0: not conditioned on token features
  token_dim: int = 0             # their width
  mlp_ratio: float = 4.0
  norm_eps: float = 1e-5
  scan: bool = False
  dtype: Dtype = jnp.float32

  @property
  def cond_features(self):
    return (("embedding",) if self.text_embed_dim else ()) + (("token_features",) if self.num_tokens else ())

  @property
  def embedding_dim(self) -> int:
    """The width of cond['embedding'] (0: not conditioned on a text embedding)."""
    return self.text_embed_dim

  @property
  def seq_len(self) -> int:
    """The Transformer's sequence: the token features, the text embedding, then timestep, x and the query."""
    return self.num_tokens + (1 if self.text_embed_dim else 0) + 3

  @nn.compact
  def __call__(self, x: jnp.ndarray, t: jnp.ndarray, cond=None, *, train: bool = False) -> jnp.ndarray:
    from jaxgen import conditions
    from jaxgen.nn.embeddings import sinusoidal_embedding
    what = (f"PriorTransformer(embed_dim={self.embed_dim}, text_embed_dim={self.text_embed_dim}, "
            f"num_tokens={self.num_tokens})")
    if x.ndim != 2 or x.shape[-1] != self.embed_dim:
      raise ValueError(f"{what} takes vectors (B, {self.embed_dim}); got shape {tuple(x.shape)}")
    if bool(self.num_tokens) != bool(self.token_dim):
      raise ValueError(f"PriorTransformer num_tokens={self.num_tokens}, token_dim={self.token_dim}: set both "
                       "(token features (L, W)) or neither")
    b = x.shape[0]
    conditions.check_cond(cond, self.cond_features, b, what)
    dense = lambda name: nn.Dense(self.width, dtype=self.dtype, name=name)   # noqa: E731
    seq = []
    if self.num_tokens:
      tokens = cond["token_features"]
      if tokens.shape[1:] != (self.num_tokens, self.token_dim):
        raise ValueError(f"cond['token_features'] has shape {tuple(tokens.shape)}; {what} takes (B, "
                         f"{self.num_tokens}, {self.token_dim})")
      seq.append(dense("token_proj")(tokens.astype(jnp.float32)))
    if self.text_embed_dim:
      text = cond["embedding"]
      if text.shape[1:] != (self.text_embed_dim,):
        raise ValueError(f"cond['embedding'] has shape {tuple(text.shape)}; {what} takes (B, {self.text_embed_dim})")
      seq.append(dense("text_proj")(text.astype(jnp.float32))[:, None])
    temb = dense("temb_1")(nn.swish(dense("temb_0")(sinusoidal_embedding(t, self.width))))
    seq.append(temb[:, None])
    seq.append(dense("x_proj")(x.astype(jnp.float32))[:, None])
    query = self.param("query", nn.initializers.normal(0.02), (self.width,), jnp.float32)
    seq.append(jnp.broadcast_to(query.astype(self.dtype), (b, 1, self.width)))
    h = jnp.concatenate([s.astype(self.dtype) for s in seq], axis=1)
    pos = self.param("positional_embedding", nn.initializers.normal(0.01), (self.seq_len, self.width), jnp.float32)
    h = h + pos[None].astype(self.dtype)
    h = Transformer(self.depth, self.num_heads, self.mlp_ratio, norm_eps=self.norm_eps, scan=self.scan,
                    dtype=self.dtype, name="transformer")(h, causal=True)
    out = nn.LayerNorm(self.norm_eps, dtype=self.dtype, name="ln_final")(h[:, -1])
    out = nn.Dense(self.embed_dim, dtype=self.dtype, kernel_init=nn.initializers.zeros, name="out")(out)
    return out.astype(jnp.float32)
