"""The digits sample-quality probe: real digits score high, noise clearly lower."""
import numpy as np
import pytest

from jaxgen.data.builders.digits import digits_split_arrays
from jaxgen.eval.digits_classifier import fit_digits_classifier, score_digit_samples


@pytest.fixture(scope="module")
def probe():
  return fit_digits_classifier(seed=0)


def test_probe_scores_real_digits_high_and_noise_low(probe):
  assert probe.test_accuracy > 0.93
  images, _ = digits_split_arrays("test")
  real = score_digit_samples(probe, images)
  assert real["test_accuracy"] == probe.test_accuracy
  assert real["mean_confidence"] > 0.85 and real["confident_fraction"] > 0.6
  assert real["classes_covered"] == 10 and sum(real["class_counts"]) == len(images)
  # Floats in [-1, 1] are the same images.
  as_float = score_digit_samples(probe, images.astype(np.float32) / 127.5 - 1.0)
  assert as_float["class_counts"] == real["class_counts"]
  np.testing.assert_allclose(as_float["mean_confidence"], real["mean_confidence"], rtol=1e-5)

  rng = np.random.default_rng(0)
  for noise in (rng.integers(0, 256, size=(300, 8, 8, 1), dtype=np.uint8),
                rng.uniform(-1, 1, size=(300, 8, 8, 1)).astype(np.float32)):
    fake = score_digit_samples(probe, noise)
    assert fake["mean_confidence"] < real["mean_confidence"] - 0.2
    assert fake["confident_fraction"] < real["confident_fraction"] / 2


def test_probe_rejects_wrong_shapes(probe):
  with pytest.raises(ValueError, match="8, 8, 1"):
    score_digit_samples(probe, np.zeros((4, 32, 32, 3), np.uint8))
