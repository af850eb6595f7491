"""Held-out evaluation in fixed-size batches that never drops the remainder.

The last partial batch is padded (by repeating its first example) to keep one compiled shape, and the padding
is cut from the result, so every example is scored exactly once.
"""
from __future__ import annotations

from typing import Callable, Dict

import jax
import numpy as np


def evaluate_per_example(fn: Callable, arrays: Dict[str, np.ndarray], batch_size: int, rng=None) -> np.ndarray:
  """fn(batch_dict, rng_or_None) -> (b,) per-example values; returns all N values (N = len of the arrays)."""
  if batch_size < 1:
    raise ValueError(f"batch_size={batch_size} must be >= 1")
  sizes = {k: len(v) for k, v in arrays.items()}
  if len(set(sizes.values())) != 1:
    raise ValueError(f"arrays have different lengths: {sizes}")
  n = next(iter(sizes.values()))
  if n == 0:
    raise ValueError("nothing to evaluate: the arrays are empty")
  out = []
  for i, start in enumerate(range(0, n, batch_size)):
    batch = {k: np.asarray(v[start:start + batch_size]) for k, v in arrays.items()}
    b = len(next(iter(batch.values())))
    if b < batch_size:
      batch = {k: np.concatenate([v, np.repeat(v[:1], batch_size - b, axis=0)]) for k, v in batch.items()}
    key = None if rng is None else jax.random.fold_in(rng, i)
    out.append(np.asarray(fn(batch, key))[:b])
  return np.concatenate(out)
