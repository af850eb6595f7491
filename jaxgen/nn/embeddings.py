"""Timestep embeddings for diffusion networks."""
import math

import chex
import jax.numpy as jnp


def sinusoidal_embedding(t: chex.Array, dim: int, max_period: float = 10000) -> jnp.ndarray:
  """The DDPM / transformer sinusoidal embedding of timesteps.

  Matches `get_timestep_embedding` of Ho et al.'s official code: frequencies
  `exp(-log(max_period) * i / (half - 1))` for `i < half = dim // 2`, the sines
  in the first half of the output and the cosines in the second; an odd `dim`
  gets one trailing zero column.

  Args:
    t: (B,) integer or float timesteps.
    dim: embedding width, >= 1.
    max_period: the longest period of the frequencies.

  Returns:
    (B, dim) float32 embedding.
  """
  chex.assert_rank(t, 1)
  if dim < 1:
    raise ValueError(f"sinusoidal_embedding needs dim >= 1, got dim={dim}")
  half = dim // 2
  # The official code divides by (half - 1); guard half == 1 (dim 2 or 3), where
  # it would divide by zero, by using the single frequency 1.
  scale = math.log(max_period) / max(half - 1, 1)
  freqs = jnp.exp(jnp.arange(half, dtype=jnp.float32) * -scale)
  args = t.astype(jnp.float32)[:, None] * freqs[None, :]
  emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=1)
  if dim % 2 == 1:
    emb = jnp.pad(emb, ((0, 0), (0, 1)))
  return emb
