"""FID, IS, KID and precision/recall against independent computations on small fixed feature sets."""
import itertools
import math

import numpy as np
import pytest

from jaxgen.eval import metrics


def _spd(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T + 0.5 * np.eye(d)


def test_frechet_distance_of_two_gaussians_in_closed_form():
  rng = np.random.default_rng(0)
  # diagonal covariances: FID = |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2))
  mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
  v1, v2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
  want = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
  assert metrics.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(want, rel=1e-9)
  # general SPD: tr((S1 S2)^1/2) = sum of sqrt(eigenvalues of S1^1/2 S2 S1^1/2), computed independently
  s1, s2 = _spd(rng, 6), _spd(rng, 6)
  w, u = np.linalg.eigh(s1)
  root1 = u @ np.diag(np.sqrt(w)) @ u.T
  tr_sqrt = np.sum(np.sqrt(np.linalg.eigvalsh(root1 @ s2 @ root1)))
  want = np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
  assert metrics.frechet_distance(np.zeros(6), s1, np.zeros(6), s2) == pytest.approx(want, rel=1e-8)
  assert metrics.frechet_distance(mu1, s1[:5, :5], mu1, s1[:5, :5]) == pytest.approx(0.0, abs=1e-8)


def test_fid_from_samples_approaches_the_closed_form():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(20000, 3))
  b = 2.0 + 1.5 * rng.normal(size=(20000, 3))        # mean shift 2, std 1.5
  want = 3 * 4.0 + 3 * (1 + 2.25 - 2 * 1.5)
  assert metrics.fid(a, b) == pytest.approx(want, rel=0.03)
  with pytest.raises(ValueError, match="do not match"):
    metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_inception_score_extremes():
  n, k = 1000, 10
  uniform = np.zeros((n, k))
  assert metrics.inception_score(uniform) == pytest.approx((1.0, 0.0), abs=1e-9)
  confident = np.full((n, k), -50.0)
  confident[np.arange(n), np.arange(n) % k] = 50.0    # every split sees every class equally, each image certain
  mean, std = metrics.inception_score(confident)
  assert mean == pytest.approx(k, rel=1e-6) and std < 1e-6
  # saturated softmaxes (probabilities that underflow to exact zeros; e.g. a network's logits of order 1e3):
  # 0 log 0 = 0, not NaN
  mean, std = metrics.inception_score(confident * 100.0)
  assert mean == pytest.approx(k, rel=1e-9) and std < 1e-9


def test_kid_equals_a_direct_double_sum():
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(12, 4)), 0.5 + rng.normal(size=(9, 4))
  k = lambda a, b: (np.dot(a, b) / 4 + 1.0) ** 3   # noqa: E731
  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
  xy = sum(k(a, b) for a in x for b in y) / (m * n)
  assert metrics.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
  # with one subset holding every feature, KID is that value
  mean, std = metrics.kid(x, y[:9], num_subsets=1, subset_size=9)
  direct = metrics.mmd2_unbiased(x[np.random.default_rng(0).choice(12, 9, replace=False)], y)
  assert mean == pytest.approx(direct, rel=1e-10) and std == 0.0
  # unbiased: two samples of one distribution give KID near 0, a shifted one clearly above
  a, b, c = rng.normal(size=(3, 2000, 8))
  assert abs(metrics.kid(a, b, num_subsets=20, subset_size=500)[0]) < 0.01 < metrics.kid(a, c + 1.0)[0]


def _brute_precision(real, fake, k):
  radii = [sorted(math.dist(r, q) for q in real)[k] for r in real]
  return np.mean([any(math.dist(f, r) <= rad for r, rad in zip(real, radii)) for f in fake])


def test_precision_recall_against_brute_force():
  rng = np.random.default_rng(3)
  real = rng.normal(size=(60, 3))
  fake = np.concatenate([rng.normal(size=(30, 3)), 6.0 + rng.normal(size=(30, 3))])   # half off the real manifold
  pr = metrics.precision_recall(real, fake, k=3)
  assert pr["precision"] == pytest.approx(_brute_precision(real, fake, 3))
  assert pr["recall"] == pytest.approx(_brute_precision(fake, real, 3))
  assert 0.3 < pr["precision"] <= 0.55 and pr["recall"] > 0.7
  same = metrics.precision_recall(real, real, k=3)
  assert same == {"precision": 1.0, "recall": 1.0}
