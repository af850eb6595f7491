"""Pixel conversions. Images travel as uint8 through input pipelines and become floats on the device."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def uint8_to_signed_unit(images) -> jnp.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1] (x / 127.5 - 1). Runs inside the compiled step."""
  return jnp.asarray(images).astype(jnp.float32) / 127.5 - 1.0


def signed_unit_to_uint8(images) -> np.ndarray:
  """float [-1, 1] -> uint8 [0, 255], rounding and clipping (host side, for grids and metrics)."""
  x = (np.asarray(images, np.float32) + 1.0) * 127.5
  return np.clip(np.round(x), 0, 255).astype(np.uint8)
