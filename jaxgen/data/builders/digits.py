"""TFDS builder `digits`: scikit-learn's 8x8 handwritten digits, served offline.

The data are the 1797 images of `sklearn.datasets.load_digits` (a copy of the UCI
"Optical Recognition of Handwritten Digits" test set, shipped inside scikit-learn),
so this builder needs no network.

Features
  image: `tfds.features.Image(shape=(8, 8, 1))`, uint8. The original intensities
         v in 0..16 are mapped to round_half_up(v * 255 / 16) in 0..255
         (0 -> 0, 8 -> 128, 16 -> 255).
  label: `ClassLabel(num_classes=10)`, the digit 0..9.

Splits (deterministic, stratified by class, identical on every machine)
  train: 1497 examples
  test:   300 examples
Within each class, examples are ranked by a fixed integer hash (splitmix64) of
their scikit-learn index; the first `quota[c]` of each class go to `test`, where
the per-class quotas are proportional to the class sizes (largest remainder, 300
in total). No random number generator is involved, so the split does not depend
on numpy's or TensorFlow's RNG versions.

`digits_split_arrays(split)` returns the same split as numpy arrays without TFDS
or TensorFlow (in scikit-learn index order); the builder writes exactly those
examples, keyed by their scikit-learn index.

Usage
  import jaxgen.data.builders.digits  # registers 'digits' with TFDS
  tfds.builder('digits', data_dir=...).download_and_prepare()
"""
from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from jaxgen.data.builders import splitmix64

NUM_EXAMPLES = 1797
NUM_TEST = 300
SPLIT_SIZES = {"train": NUM_EXAMPLES - NUM_TEST, "test": NUM_TEST}
_SPLIT_SEED = 0x5EED_D161


def _load_raw() -> tuple[np.ndarray, np.ndarray]:
  """All 1797 images as uint8 (N, 8, 8, 1) in 0..255 and labels as int64 (N,)."""
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  raw = load_digits()
  v = np.asarray(raw.images, dtype=np.int64)  # integer intensities 0..16
  if v.shape != (NUM_EXAMPLES, 8, 8) or v.min() < 0 or v.max() > 16:
    raise RuntimeError(f"unexpected sklearn digits data: shape {v.shape}, "
                       f"range {v.min()}..{v.max()}")
  images = ((v * 255 + 8) // 16).astype(np.uint8)[..., None]  # round half up
  return images, np.asarray(raw.target, dtype=np.int64)


def split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
  """Sorted scikit-learn indices of the `train` and `test` splits (stratified)."""
  labels = np.asarray(labels)
  classes, counts = np.unique(labels, return_counts=True)
  exact = counts * NUM_TEST / labels.size
  quota = np.floor(exact).astype(int)
  # Largest remainder; ties broken by class id, so the result is deterministic.
  order = sorted(range(len(classes)), key=lambda k: (-(exact[k] - quota[k]), k))
  for k in order[:NUM_TEST - quota.sum()]:
    quota[k] += 1
  test = []
  for c, q in zip(classes, quota):
    members = np.flatnonzero(labels == c)
    ranked = sorted(members.tolist(), key=lambda i: splitmix64(i ^ _SPLIT_SEED))
    test.extend(ranked[:q])
  test_idx = np.sort(np.asarray(test, dtype=np.int64))
  train_idx = np.setdiff1d(np.arange(labels.size), test_idx)
  return {"train": train_idx, "test": test_idx}


def digits_split_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
  """(images uint8 (n, 8, 8, 1), labels int32 (n,)) of `split`, no TFDS needed."""
  if split not in SPLIT_SIZES:
    raise ValueError(f"unknown digits split {split!r}; choose one of: "
                     f"{', '.join(SPLIT_SIZES)}")
  images, labels = _load_raw()
  idx = split_indices(labels)[split]
  return images[idx], labels[idx].astype(np.int32)


class Digits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's 8x8 handwritten digits (1497 train / 300 test), offline."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: stratified 1497/300 split."}

  def _info(self) -> tfds.core.DatasetInfo:
    # A plain module cannot use self.dataset_info_from_configs (it looks for
    # metadata files next to a dataset package).
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(8, 8, 1)),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        homepage="https://scikit-learn.org/stable/modules/generated/"
                 "sklearn.datasets.load_digits.html",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    images, labels = _load_raw()
    idx = split_indices(labels)
    return {name: self._generate_examples(images, labels, idx[name])
            for name in ("train", "test")}

  def _generate_examples(self, images, labels, indices):
    for i in indices.tolist():
      yield i, {"image": images[i], "label": int(labels[i])}
