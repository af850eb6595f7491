"""Sample grids and loss curves: the pictures a run leaves in its workdir."""
from __future__ import annotations

import json
import math
import os
from typing import Optional

import numpy as np
from PIL import Image

from jaxgen.data.image import signed_unit_to_uint8


def image_grid(images: np.ndarray, ncols: Optional[int] = None, padding: int = 1, pad_value: int = 255) -> np.ndarray:
  """(N, H, W, C) uint8 -> one (rows*(H+p)+p, cols*(W+p)+p, C) uint8 mosaic, row-major."""
  images = np.asarray(images)
  n, h, w, c = images.shape
  ncols = ncols or int(math.ceil(math.sqrt(n)))
  nrows = int(math.ceil(n / ncols))
  grid = np.full((nrows * (h + padding) + padding, ncols * (w + padding) + padding, c), pad_value, np.uint8)
  for i in range(n):
    r, col = divmod(i, ncols)
    y, x = padding + r * (h + padding), padding + col * (w + padding)
    grid[y:y + h, x:x + w] = images[i]
  return grid


def save_image_grid(path: str, images, *, ncols: Optional[int] = None, min_size: int = 512) -> str:
  """Save images in [-1, 1] (float) or uint8 as a PNG grid, upscaled (nearest) to at least `min_size` px."""
  images = np.asarray(images)
  if images.dtype != np.uint8:
    images = signed_unit_to_uint8(images)
  grid = image_grid(images, ncols)
  scale = max(1, int(math.ceil(min_size / max(grid.shape[:2]))))
  if scale > 1:
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
  if grid.shape[-1] == 1:
    grid = grid[..., 0]
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(grid).save(path)
  return path


def plot_loss_curve(metrics_path: str, out_path: str, key: str = "loss") -> Optional[str]:
  """Plot `key` against `step` from a metrics.jsonl file (log-scale y); returns the PNG path or None."""
  steps, values = [], []
  with open(metrics_path) as f:
    for line in f:
      row = json.loads(line)
      if key in row and "step" in row:
        steps.append(row["step"])
        values.append(row[key])
  if not steps:
    return None
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
  ax.plot(steps, values, lw=1)
  if min(values) > 0:
    ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel(key)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(out_path)
  plt.close(fig)
  return out_path
