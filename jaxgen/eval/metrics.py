"""Sample-quality metrics as the field defines them, as functions of features (numpy, float64 on the host).

  frechet_distance(mu1, s1, mu2, s2) / fid(features_a, features_b)
      ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Heusel et al. 2017); the matrix square root by
      scipy.linalg.sqrtm in float64, with pytorch-fid's guard: if the product is singular the diagonals get an
      offset eps; a small imaginary part from round-off is dropped, a large one is an error
  inception_score(logits, splits=10)
      exp(E_x KL(p(y|x) || p(y))) per split, mean and std over `splits` equal splits (Salimans et al. 2016)
  kid(features_a, features_b, num_subsets, subset_size)
      the unbiased MMD^2 with the polynomial kernel k(x, y) = (x.y / d + 1)^3, mean and std over random subsets
      (Binkowski et al. 2018)
  precision_recall(real, fake, k=3)
      Kynkaanniemi et al. 2019: precision = fraction of fake samples inside the real manifold (the union of balls
      around each real feature of radius its distance to its k-th nearest real neighbour); recall = the same with
      the roles swapped
"""
from __future__ import annotations

import warnings
from typing import Dict, Tuple

import numpy as np


def gaussian_stats(features) -> Tuple[np.ndarray, np.ndarray]:
  """Mean and covariance (unbiased, as numpy.cov) of features (N, D), float64."""
  f = np.asarray(features, np.float64)
  if f.ndim != 2 or f.shape[0] < 2:
    raise ValueError(f"features must be (N >= 2, D), got shape {f.shape}")
  return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
  from scipy import linalg
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
    raise ValueError(f"statistics do not match: means {mu1.shape}, {mu2.shape}; covariances {s1.shape}, {s2.shape}")
  diff = mu1 - mu2
  with warnings.catch_warnings():          # a singular product is handled below, as pytorch-fid does
    warnings.simplefilter("ignore", linalg.LinAlgWarning)
    covmean = linalg.sqrtm(s1.dot(s2))
  if not np.isfinite(covmean).all():
    offset = np.eye(s1.shape[0]) * eps
    covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f"the matrix square root has an imaginary component {np.max(np.abs(covmean.imag)):.3g}")
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fid(features_a, features_b) -> float:
  return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def inception_score(logits, splits: int = 10) -> Tuple[float, float]:
  """(mean, std) over `splits` of exp(mean_x KL(p(y|x) || p(y))); `logits` (N, K) (softmax taken here)."""
  z = np.asarray(logits, np.float64)
  if z.ndim != 2 or len(z) < splits:
    raise ValueError(f"logits must be (N >= splits={splits}, K), got shape {z.shape}")
  from scipy.special import logsumexp, xlogy
  log_p = z - logsumexp(z, axis=1, keepdims=True)
  scores = []
  for part in np.array_split(log_p, splits):
    p = np.exp(part)
    marginal = p.mean(axis=0)
    # sum_y p log p - sum_y p log p(y), with 0 log 0 = 0 (saturated softmaxes underflow to exact zeros)
    kl = xlogy(p, p).sum(axis=1) - xlogy(p, marginal[None, :]).sum(axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


def _poly_kernel(x, y):
  return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
  """The unbiased MMD^2 estimate between two samples under the cubic polynomial kernel."""
  m, n = len(x), len(y)
  kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
  return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
               - 2 * kxy.mean())


def kid(features_a, features_b, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> Tuple[float, float]:
  """(mean, std) of the unbiased MMD^2 over `num_subsets` random subsets of `subset_size` from each set."""
  a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
  size = min(subset_size, len(a), len(b))
  if size < 2:
    raise ValueError(f"KID needs at least 2 features in each set, got {len(a)} and {len(b)}")
  rng = np.random.default_rng(seed)
  vals = [mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
          for _ in range(num_subsets)]
  return float(np.mean(vals)), float(np.std(vals))


def _pairwise_sq(a, b, chunk: int = 2048):
  for i in range(0, len(a), chunk):
    x = a[i:i + chunk]
    yield i, np.maximum((x * x).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * x @ b.T, 0.0)


def _kth_neighbour_sq(x, k: int) -> np.ndarray:
  """Squared distance of each row of x to its k-th nearest other row."""
  out = np.empty(len(x))
  for i, d in _pairwise_sq(x, x):
    out[i:i + len(d)] = np.partition(d, k, axis=1)[:, k]     # index 0 is the point itself (distance 0)
  return out


def _coverage(manifold, radii_sq, queries) -> float:
  inside = np.zeros(len(queries), bool)
  for i, d in _pairwise_sq(queries, manifold):
    inside[i:i + len(d)] = (d <= radii_sq[None, :]).any(axis=1)
  return float(inside.mean())


def precision_recall(real, fake, k: int = 3) -> Dict[str, float]:
  r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  if min(len(r), len(f)) <= k:
    raise ValueError(f"precision/recall with k={k} needs more than {k} features in each set")
  return {"precision": _coverage(r, _kth_neighbour_sq(r, k), f),
          "recall": _coverage(f, _kth_neighbour_sq(f, k), r)}
