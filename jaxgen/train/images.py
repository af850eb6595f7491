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


def save_samples_figure(path: str, samples, kind: Optional[str] = None, reference=None, title: str = ""):
  """A run's picture of its samples: a grid for images (returns the uint8 grid), a scatter plot over the data
  (`reference`, optional) for 2-D points (returns None). kind: 'image' | 'points' (the data set's kind;
  None: images are (N, H, W, C), points (N, D))."""
  samples = np.asarray(samples)
  if kind == "points" or (kind is None and samples.ndim == 2):
    save_scatter(path, samples, reference, title=title)
    return None
  save_image_grid(path, samples)
  return image_grid(signed_unit_to_uint8(samples) if samples.dtype != np.uint8 else samples)


def save_captioned_grid(path: str, rows, captions, scores=None, *, sources=None, cell: float = 0.9) -> str:
  """One row of uint8 images (R, K, H, W, C) per caption (R strings), the caption written above its row and each
  image's score (R, K) under it when given; `sources` (R, H, W, C): an image shown first in each row (the image
  whose variations the row holds)."""
  rows = np.asarray(rows)
  r, k = rows.shape[:2]
  first = 1 if sources is not None else 0
  plt = pyplot()
  fig, axes = plt.subplots(r, k + first, figsize=(cell * (k + first), (cell + 0.35) * r), dpi=100, squeeze=False)
  for i in range(r):
    cells = ([np.asarray(sources)[i]] if first else []) + list(rows[i])
    for j, img in enumerate(cells):
      ax = axes[i, j]
      ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if first and j == 0:
        ax.set_xlabel("source", fontsize=6)
      elif scores is not None:
        ax.set_xlabel(f"{float(np.asarray(scores)[i, j - first]):.1f}", fontsize=6)
    axes[i, 0].set_title(str(captions[i]), fontsize=7, loc="left")
  fig.tight_layout(pad=0.3)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path)
  plt.close(fig)
  return path


def save_scatter(path: str, points, reference=None, title: str = "", limit: float = 3.0) -> str:
  """2-D points (N, 2) over optional reference points, e.g. generator samples over the data."""
  plt = pyplot()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
  if reference is not None:
    ax.scatter(reference[:, 0], reference[:, 1], s=2, alpha=0.3, label="data")
  ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.3, label="samples")
  ax.set_xlim(-limit, limit)
  ax.set_ylim(-limit, limit)
  ax.set_aspect("equal")
  ax.legend(loc="upper right", fontsize=6, markerscale=4)
  ax.set_title(title, fontsize=6)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path


def pyplot():
  """matplotlib.pyplot with the non-interactive Agg backend (figures are only ever written to files)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def read_metrics(metrics_path: str):
  """The rows of a metrics.jsonl file (a list of dicts)."""
  with open(metrics_path) as f:
    return [json.loads(line) for line in f if line.strip()]


def plot_loss_curves(metrics_path: str, out_path: str) -> Optional[str]:
  """Every 'train/*loss' metric against the step (one line each; log-scale y when all positive)."""
  rows = read_metrics(metrics_path)
  keys = sorted({k for r in rows for k in r if k.startswith("train/") and k.endswith("loss")})
  if not keys:
    return None
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
  positive = True
  for k in keys:
    pts = [(r["step"], r[k]) for r in rows if k in r]
    ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1, label=k[len("train/"):])
    positive = positive and min(p[1] for p in pts) > 0
  if positive:
    ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("training loss")
  if len(keys) > 1:
    ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(out_path)
  plt.close(fig)
  return out_path
