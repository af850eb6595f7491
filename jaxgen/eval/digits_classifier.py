"""A sample-quality probe for models trained on the 8x8 `digits` data.

`fit_digits_classifier()` trains a multinomial logistic regression on the pixels
(scaled to [0, 1]) of our digits `train` split and measures its accuracy on the
`test` split (about 0.97). `score_digit_samples(probe, images)` then asks how
digit-like generated images look:

  mean_confidence     mean over samples of the max class probability
  confident_fraction  fraction of samples whose max class probability is > 0.9
  class_counts        10 ints: how many samples fall in each argmax class
  classes_covered     number of classes holding at least 2% of the samples
  test_accuracy       the probe's accuracy on the real test split

Reference values (seed 0): real test digits score mean_confidence ~0.91 and
confident_fraction ~0.75 with all 10 classes covered; uniform or Gaussian pixel
noise scores ~0.6 and ~0.1. A plain (weakly regularised) linear model is used on
purpose: an unregularised MLP is over-confident on noise and would be a poor probe.

The splits come from `jaxgen.data.builders.digits.digits_split_arrays`, the very
arrays the TFDS `digits` builder writes, so no prepared data_dir or TensorFlow
is needed.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

CONFIDENT_THRESHOLD = 0.9
COVERAGE_FRACTION = 0.02
NUM_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class DigitsProbe:
  """A fitted digits classifier and its accuracy on the real test split."""
  model: Any  # sklearn LogisticRegression
  test_accuracy: float


def to_unit_pixels(images) -> np.ndarray:
  """(N, 8, 8[, 1]) uint8 0..255 or float [-1, 1] -> float32 (N, 64) in [0, 1]."""
  x = np.asarray(images)
  if x.ndim == 4 and x.shape[-1] == 1:
    x = x[..., 0]
  if x.ndim != 3 or x.shape[1:] != (8, 8):
    raise ValueError(f"expected digit images of shape (N, 8, 8, 1), got {np.shape(images)}")
  if np.issubdtype(x.dtype, np.integer):
    x = x.astype(np.float32) / 255.0
  elif np.issubdtype(x.dtype, np.floating):
    x = (np.clip(x.astype(np.float32), -1.0, 1.0) + 1.0) / 2.0
  else:
    raise ValueError(f"expected uint8 or float images, got dtype {x.dtype}")
  return np.clip(x, 0.0, 1.0).reshape(len(x), 64)


def fit_digits_classifier(seed: int = 0) -> DigitsProbe:
  """Fits the probe on the digits `train` split; reports `test` accuracy."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  from jaxgen.data.builders.digits import digits_split_arrays  # pylint: disable=import-outside-toplevel
  x_train, y_train = digits_split_arrays("train")
  x_test, y_test = digits_split_arrays("test")
  model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
  model.fit(to_unit_pixels(x_train), y_train)
  accuracy = float(model.score(to_unit_pixels(x_test), y_test))
  return DigitsProbe(model=model, test_accuracy=accuracy)


def score_digit_samples(probe: DigitsProbe, images) -> dict[str, Any]:
  """Scores generated images (uint8 0..255 or float [-1, 1], (N, 8, 8, 1))."""
  x = to_unit_pixels(images)
  if len(x) == 0:
    raise ValueError("no images to score")
  proba = probe.model.predict_proba(x)
  max_p = proba.max(axis=1)
  labels = probe.model.classes_[proba.argmax(axis=1)]
  counts = np.bincount(labels, minlength=NUM_CLASSES)[:NUM_CLASSES]
  return {
      "mean_confidence": float(max_p.mean()),
      "confident_fraction": float((max_p > CONFIDENT_THRESHOLD).mean()),
      "class_counts": [int(c) for c in counts],
      "classes_covered": int((counts >= COVERAGE_FRACTION * len(x)).sum()),
      "test_accuracy": float(probe.test_accuracy),
  }
