"""Using a flow's exact latent: interpolation, class-mean attribute directions, manipulation.

Latents are the standardised eps (B, D) of `FlowModel.encode`, where the prior is N(0, I).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def interpolate(model, params, images_a, images_b, num_steps: int):
  """Decode (1 - t) eps_a + t eps_b for t in linspace(0, 1, num_steps): (pairs, num_steps, H, W, C) in [-1, 1]."""
  if num_steps < 2:
    raise ValueError(f"num_steps={num_steps} must be >= 2")
  ea, eb = model.encode(params, images_a), model.encode(params, images_b)
  t = jnp.linspace(0.0, 1.0, num_steps)[None, :, None]
  eps = (1 - t) * ea[:, None] + t * eb[:, None]
  out = model.decode(params, eps.reshape(-1, ea.shape[-1]))
  return out.reshape((ea.shape[0], num_steps) + out.shape[1:])


def class_mean_latents(model, params, images, labels, num_classes: int, batch_size: int = 256) -> np.ndarray:
  """(num_classes, D): the mean latent of each class's images."""
  eps = np.concatenate([np.asarray(model.encode(params, images[i:i + batch_size]))
                        for i in range(0, len(images), batch_size)])
  labels = np.asarray(labels)
  missing = [c for c in range(num_classes) if not np.any(labels == c)]
  if missing:
    raise ValueError(f"classes {missing} have no images")
  return np.stack([eps[labels == c].mean(axis=0) for c in range(num_classes)])


def manipulate(model, params, images, direction, strengths):
  """Decode eps(x) + a * direction for each strength a: (B, len(strengths), H, W, C) in [-1, 1]."""
  eps = model.encode(params, images)
  a = jnp.asarray(strengths, jnp.float32)[None, :, None]
  moved = eps[:, None] + a * jnp.asarray(direction)[None, None]
  out = model.decode(params, moved.reshape(-1, eps.shape[-1]))
  return out.reshape((eps.shape[0], len(strengths)) + out.shape[1:])
