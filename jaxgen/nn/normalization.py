"""Batch normalisation for GAN generators, optionally class-conditional (de Vries et al. 2017; BigGAN).

Statistics are always those of the current batch, in training and when sampling: there are no running
averages, so the EMA generator (whose weights never produced any running statistics) is normalised
consistently. Sample batches are large (64-100) so the batch statistics are stable.
With `num_classes > 0`, gain and bias come from per-class embeddings (gain = 1 + embedding, both
initialised at zero), i.e. conditional batch norm; otherwise they are ordinary learned vectors.
"""
from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax.numpy as jnp


class BatchStatNorm(nn.Module):
  num_classes: int = 0
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, labels: Optional[jnp.ndarray] = None):
    axes = tuple(range(x.ndim - 1))
    xf = x.astype(jnp.float32)
    mean = xf.mean(axes, keepdims=True)
    var = jnp.square(xf - mean).mean(axes, keepdims=True)
    y = (xf - mean) * jnp.reciprocal(jnp.sqrt(var + self.epsilon))
    c = x.shape[-1]
    if self.num_classes > 0:
      if labels is None:
        raise ValueError("conditional batch norm needs labels")
      gain = 1.0 + nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, name="gain")(labels)
      bias = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, name="bias")(labels)
      shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (c,)
      y = y * gain.reshape(shape) + bias.reshape(shape)
    else:
      y = y * self.param("scale", nn.initializers.ones, (c,)) + self.param("bias", nn.initializers.zeros, (c,))
    return y.astype(x.dtype)
