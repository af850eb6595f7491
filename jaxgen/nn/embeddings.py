"""Timestep embeddings for diffusion networks."""
import math

import chex
import jax.numpy as jnp


def sinusoidal_embedding(t: chex.Array, dim: int, max_period: float = 10000, *, flip_sin_to_cos: bool = False,
                         freq_shift: float = 1.0) -> jnp.ndarray:
  """The DDPM / transformer sinusoidal embedding of timesteps.

  With the defaults it matches `get_timestep_embedding` of Ho et al.'s official code: frequencies
  `exp(-log(max_period) * i / (half - freq_shift))` for `i < half = dim // 2`, the sines in the first half of
  the output and the cosines in the second (`flip_sin_to_cos=True`: cosines first); an odd `dim` gets one
  trailing zero column. `flip_sin_to_cos` and `freq_shift` are diffusers' `Timesteps` options of those names
  (its DDPM CIFAR-10 model uses False and 1, i.e. the defaults here).

  Args:
    t: (B,) integer or float timesteps.
    dim: embedding width, >= 1.
    max_period: the longest period of the frequencies.
    flip_sin_to_cos: put the cosines first.
    freq_shift: subtracted from `half` in the frequency exponent's denominator.

  Returns:
    (B, dim) float32 embedding.
  """
  chex.assert_rank(t, 1)
  if dim < 1:
    raise ValueError(f"sinusoidal_embedding needs dim >= 1, got dim={dim}")
  half = dim // 2
  # The official code divides by (half - 1); guard a zero or negative denominator (e.g. half == 1, dim 2 or 3,
  # with freq_shift 1), where it would divide by zero, by using the single frequency 1.
  denominator = half - freq_shift
  scale = math.log(max_period) / (denominator if denominator > 0 else 1.0)
  freqs = jnp.exp(jnp.arange(half, dtype=jnp.float32) * -scale)
  args = t.astype(jnp.float32)[:, None] * freqs[None, :]
  parts = [jnp.cos(args), jnp.sin(args)] if flip_sin_to_cos else [jnp.sin(args), jnp.cos(args)]
  emb = jnp.concatenate(parts, axis=1)
  if dim % 2 == 1:
    emb = jnp.pad(emb, ((0, 0), (0, 1)))
  return emb
