"""Procedural 2-D densities for flows and GANs: two moons, a ring of 8 Gaussians, a checkerboard.

Every sample is a pure function of (seed, step, process), so training on them resumes exactly.
The ring of 8 Gaussians has a known density (`eight_gaussians_log_prob`), so learned likelihoods and
mode coverage can be checked against the truth.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional

import numpy as np

TOY2D = ("two_moons", "eight_gaussians", "checkerboard")
RING_RADIUS = 2.0
RING_STD = 0.2


def ring_centers(num_modes: int = 8, radius: float = RING_RADIUS) -> np.ndarray:
  angles = 2 * math.pi * np.arange(num_modes) / num_modes
  return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_toy2d(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
  """n points (float32, (n, 2)) from the named density."""
  if name == "eight_gaussians":
    centers = ring_centers()
    idx = rng.integers(0, len(centers), size=n)
    x = centers[idx] + RING_STD * rng.standard_normal((n, 2))
  elif name == "two_moons":
    t = rng.uniform(0, math.pi, size=n)
    upper = rng.random(n) < 0.5
    x = np.where(upper[:, None], np.stack([np.cos(t), np.sin(t)], 1),
                 np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
    x = (x - np.array([0.5, 0.25])) * 2.0 + 0.1 * rng.standard_normal((n, 2))
  elif name == "checkerboard":
    # Uniform on the 8 dark squares of a 4x4 board over [-2, 2]^2.
    cols = rng.integers(0, 4, size=n)
    rows = 2 * rng.integers(0, 2, size=n) + (cols % 2)
    x = np.stack([cols, rows], 1) + rng.random((n, 2)) - 2.0
  else:
    raise ValueError(f"unknown toy 2-D dataset {name!r}; choose one of: {', '.join(TOY2D)}")
  return x.astype(np.float32)


def eight_gaussians_log_prob(x: np.ndarray) -> np.ndarray:
  """Exact log density (nats) of the ring of 8 Gaussians at points x (n, 2), in float64."""
  x = np.asarray(x, np.float64)
  d2 = ((x[:, None, :] - ring_centers()[None]) ** 2).sum(-1)
  log_comp = -d2 / (2 * RING_STD ** 2) - math.log(2 * math.pi * RING_STD ** 2) - math.log(8)
  m = log_comp.max(1)
  return m + np.log(np.exp(log_comp - m[:, None]).sum(1))


def eight_gaussians_entropy(num_samples: int = 1_000_000, seed: int = 0) -> float:
  """Differential entropy (nats) of the ring by Monte Carlo (the modes barely overlap: ~ log 8 + log(2 pi e s^2))."""
  x = sample_toy2d("eight_gaussians", num_samples, np.random.default_rng(seed))
  return float(-eight_gaussians_log_prob(x).mean())


def toy2d_iterator(name: str, *, global_batch_size: int, seed: int, start_step: int = 0,
                   process_index: Optional[int] = None, process_count: Optional[int] = None) -> Iterator[dict]:
  """Endless {'points': float32 (local_batch, 2)} batches; the batch of step s depends only on (seed, s, process)."""
  if name not in TOY2D:
    raise ValueError(f"unknown toy 2-D dataset {name!r}; choose one of: {', '.join(TOY2D)}")
  if process_index is None or process_count is None:
    import jax
    process_index, process_count = jax.process_index(), jax.process_count()
  local = global_batch_size // process_count
  step = start_step
  while True:
    rng = np.random.default_rng([seed, step, process_index])
    yield {"points": sample_toy2d(name, local, rng)}
    step += 1
