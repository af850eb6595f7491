"""CLIP reranking (jaxgen.unclip.rerank) against a direct loop: the kept candidate is the argmax of known
scores (the first of ties), scores are scale * <image, text>, and bad shapes or scores are named."""
import numpy as np
import pytest

from jaxgen.unclip.rerank import candidate_scores, rerank


def test_rerank_keeps_the_argmax_of_known_scores():
  rng = np.random.default_rng(0)
  c, k = 5, 4
  candidates = rng.integers(0, 256, (c, k, 3, 3, 1)).astype(np.uint8)
  scores = rng.standard_normal((c, k))
  scores[2] = [0.5, 0.9, 0.9, 0.1]                         # a tie: the first of them
  best, best_scores, index = rerank(candidates, scores)
  for i in range(c):
    j = max(range(k), key=lambda j: (scores[i, j], -j))    # highest, then the earliest
    assert index[i] == j and best_scores[i] == scores[i, j]
    np.testing.assert_array_equal(best[i], candidates[i, j])
  assert index[2] == 1


def test_candidate_scores_are_scaled_inner_products():
  rng = np.random.default_rng(1)
  img = rng.standard_normal((3, 2, 4))
  txt = rng.standard_normal((3, 4))
  got = candidate_scores(img, txt, scale=7.0)
  want = [[7.0 * float(np.dot(img[i, j], txt[i])) for j in range(2)] for i in range(3)]
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bad_shapes_and_scores_are_named():
  with pytest.raises(ValueError, match=r"need \(C, k, D\) and \(C, D\)"):
    candidate_scores(np.zeros((3, 2, 4)), np.zeros((2, 4)))
  with pytest.raises(ValueError, match=r"candidates \(3, 2\) and scores \(3, 4\)"):
    rerank(np.zeros((3, 2)), np.zeros((3, 4)))
  with pytest.raises(ValueError, match="score of candidate 1 of caption 0 is nan"):
    rerank(np.zeros((2, 2)), np.array([[0.0, np.nan], [1.0, 2.0]]))
