"""Mode-collapse figures for 2-D mixtures (Metz et al. 2017; Srivastava et al. 2017 VEEGAN):

  high_quality_fraction  fraction of samples within `num_std` standard deviations of their nearest mode
  modes_covered          modes that are the nearest mode of at least `min_count` high-quality samples
  mode_counts            high-quality samples per mode
"""
from __future__ import annotations

import numpy as np


def mode_coverage(samples, centers, std: float, *, num_std: float = 3.0, min_count: int = 20) -> dict:
  x = np.asarray(samples, np.float64)
  c = np.asarray(centers, np.float64)
  if x.ndim != 2 or x.shape[1] != c.shape[1]:
    raise ValueError(f"samples of shape {x.shape} do not match centers of shape {c.shape}")
  d = np.sqrt(((x[:, None, :] - c[None]) ** 2).sum(-1))
  nearest, dist = d.argmin(1), d.min(1)
  good = dist <= num_std * std
  counts = np.bincount(nearest[good], minlength=len(c))
  return {"modes_covered": int((counts >= min_count).sum()), "high_quality_fraction": float(good.mean()),
          "mode_counts": [int(n) for n in counts]}
