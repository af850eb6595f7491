"""CLIP reranking (unCLIP's last stage): draw k candidates per caption, keep the one CLIP scores highest.

Pure numpy on embeddings a CLIP run already computed (jaxgen.clip.api.encode_images / encode_text give unit
vectors), so it runs after sampling, outside any compiled function.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np


def candidate_scores(image_embeddings, text_embeddings, scale: float = 1.0) -> np.ndarray:
  """(C, k) scores scale * <image_ck, text_c> of k candidate image embeddings (C, k, D) per caption embedding
  (C, D) (CLIP's logits when the embeddings are unit vectors and `scale` is the run's exp(logit_scale))."""
  img, txt = np.asarray(image_embeddings), np.asarray(text_embeddings)
  if img.ndim != 3 or txt.ndim != 2 or img.shape[0] != txt.shape[0] or img.shape[2] != txt.shape[1]:
    raise ValueError(f"image embeddings {tuple(img.shape)} and text embeddings {tuple(txt.shape)}: need (C, k, D) "
                     "and (C, D), k candidates for each of C captions")
  return float(scale) * np.einsum("ckd,cd->ck", img, txt)


def rerank(candidates, scores) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(best (C, ...), its score (C,), its index (C,)) of candidates (C, k, ...) by their scores (C, k): per
  caption the highest-scoring candidate (the first of equal ones)."""
  candidates, scores = np.asarray(candidates), np.asarray(scores)
  if scores.ndim != 2 or candidates.shape[:2] != scores.shape:
    raise ValueError(f"candidates {tuple(candidates.shape)} and scores {tuple(scores.shape)}: need (C, k, ...) and "
                     "(C, k)")
  if not np.all(np.isfinite(scores)):
    bad = np.argwhere(~np.isfinite(scores))[0]
    raise ValueError(f"score of candidate {int(bad[1])} of caption {int(bad[0])} is {scores[tuple(bad)]}: "
                     "scores must be finite")
  index = np.argmax(scores, axis=1)
  rows = np.arange(len(scores))
  return candidates[rows, index], scores[rows, index], index


def keep_best(candidates, scores, num: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(the `num` highest-scoring candidates of each caption (C, num, ...), their scores (C, num), their indices
  (C, num)), best first (the earlier of equal scores first); num = 1 keeps what `rerank` keeps."""
  candidates, scores = np.asarray(candidates), np.asarray(scores)
  best, _, _ = rerank(candidates, scores)          # checks the shapes and that the scores are finite
  del best
  if not 1 <= num <= scores.shape[1]:
    raise ValueError(f"num={num}: keep between 1 and the {scores.shape[1]} candidates per caption")
  index = np.argsort(-scores, axis=1, kind="stable")[:, :num]
  rows = np.arange(len(scores))[:, None]
  return candidates[rows, index], scores[rows, index], index
