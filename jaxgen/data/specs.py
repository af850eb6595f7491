"""What jaxgen knows about each data set before touching it: kind, shapes, features, splits (no TF import).

kind 'image': uint8 images (H, W, C) served by TFDS (cifar10 online; our builders offline);
kind 'points': float32 points (D,) drawn procedurally (jaxgen.data.toy2d), an endless training stream and a
fixed held-out set of `num_test` points.
`features` names what a batch of the data set holds; FEATURE_KINDS are the kinds jaxgen knows:
  image       uint8 (B, H, W, C)             points      float32 (B, D)
  label       int32 (B,) class id            attributes  int32 (B, A) one class id per attribute
  caption     bytes (B,) English text, host side only (never sent to the device)
  tokens      int32 (B, L) caption token ids, 0-padded
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

FEATURE_KINDS = ("image", "points", "label", "attributes", "caption", "tokens")
HOST_ONLY_FEATURES = ("caption",)
KINDS = ("image", "points")

_CIFAR_HINT = (
    "To prepare it, run on a machine that is online:\n"
    "  python -c \"import tensorflow_datasets as tfds; "
    "tfds.builder('{name}').download_and_prepare()\"\n"
    "then copy ~/tensorflow_datasets/{name} into the data_dir above, or point the "
    "run at a TFDS data_dir that holds it with --config.data.data_dir=/path/to/tensorflow_datasets.\n"
    "No network at all? The offline preset --config=experiments/ddpm_cifar.py:quick "
    "trains on the bundled 'digits' data set instead.")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Static facts about a data set, known without importing TensorFlow."""
  name: str
  kind: str                          # 'image' | 'points'
  event_shape: Tuple[int, ...]       # (H, W, C) for images, (D,) for points
  num_classes: int                   # 0: no labels
  features: Tuple[str, ...]
  train_split: str = "train"
  eval_split: str = "test"
  offline: bool = True               # True if it builds (or is generated) without network access
  prepare_hint: str = ""
  num_test: int = 0                  # points: size of the fixed held-out set
  feature_shapes: Tuple[Tuple[str, Tuple[int, ...]], ...] = ()   # per-example shapes of attributes, tokens

  @property
  def image_shape(self) -> Tuple[int, int, int]:
    if self.kind != "image":
      raise ValueError(f"data set {self.name!r} holds {self.kind}, not images")
    return self.event_shape

  @property
  def device_features(self) -> Tuple[str, ...]:
    return tuple(f for f in self.features if f not in HOST_ONLY_FEATURES)


def _points(name: str) -> DatasetSpec:
  return DatasetSpec(name=name, kind="points", event_shape=(2,), num_classes=0, features=("points",),
                     prepare_hint="Generated procedurally (jaxgen.data.toy2d).", num_test=20_000)


DATASETS = {
    "cifar10": DatasetSpec(name="cifar10", kind="image", event_shape=(32, 32, 3), num_classes=10,
                           features=("image", "label"), offline=False,
                           prepare_hint=_CIFAR_HINT.format(name="cifar10")),
    "digits": DatasetSpec(name="digits", kind="image", event_shape=(8, 8, 1), num_classes=10,
                          features=("image", "label"),
                          prepare_hint="Built offline from scikit-learn on first use (jaxgen.data.builders.digits)."),
    "shapes": DatasetSpec(name="shapes", kind="image", event_shape=(32, 32, 3), num_classes=5,
                          features=("image", "label", "attributes", "caption", "tokens"),
                          feature_shapes=(("attributes", (13,)), ("tokens", (24,))),
                          prepare_hint="Drawn procedurally, offline, on first use (jaxgen.data.builders.shapes)."),
    "shapes_tiny": DatasetSpec(name="shapes_tiny", kind="image", event_shape=(32, 32, 3), num_classes=5,
                               features=("image", "label", "attributes", "caption", "tokens"),
                               feature_shapes=(("attributes", (13,)), ("tokens", (24,))),
                               prepare_hint="The first 256 / 64 examples of 'shapes', for tests and smoke runs."),
    "shapes_outlined": DatasetSpec(name="shapes_outlined", kind="image", event_shape=(32, 32, 3), num_classes=5,
                                   features=("image", "label", "attributes", "caption", "tokens"),
                                   feature_shapes=(("attributes", (13,)), ("tokens", (24,))),
                                   prepare_hint="The scenes of 'shapes' with each shape outlined, drawn offline "
                                                "(jaxgen.data.builders.shapes, config 'outlined')."),
    "shapes_outlined_tiny": DatasetSpec(name="shapes_outlined_tiny", kind="image", event_shape=(32, 32, 3),
                                        num_classes=5, features=("image", "label", "attributes", "caption", "tokens"),
                                        feature_shapes=(("attributes", (13,)), ("tokens", (24,))),
                                        prepare_hint="The first 256 / 64 examples of 'shapes_outlined'."),
    "two_moons": _points("two_moons"),
    "eight_gaussians": _points("eight_gaussians"),
    "checkerboard": _points("checkerboard"),
}


def get_dataset_spec(name: str) -> DatasetSpec:
  """The DatasetSpec of `name`; ValueError naming the allowed names otherwise."""
  try:
    return DATASETS[name]
  except (KeyError, TypeError):
    raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(sorted(DATASETS))}") from None


def dataset_names(kind: str) -> Tuple[str, ...]:
  return tuple(sorted(n for n, s in DATASETS.items() if s.kind == kind))


CAPTIONED = ("shapes", "shapes_tiny")


def caption_vocab_size(data_name: str) -> int:
  """The size of a captioned data set's token vocabulary (shapes: its words, jaxgen.data.builders.shapes.VOCAB)."""
  if data_name in CAPTIONED:
    from jaxgen.data.builders.shapes import VOCAB
    return len(VOCAB)
  raise ValueError(f"data.name={data_name!r} has no captions; captioned data sets: {', '.join(CAPTIONED)}")


def heldout_examples(data_name: str, num: int, features):
  """{feature: numpy (num, ...)} of the first `num` held-out examples of `shapes` / `shapes_tiny` (the tiny
  split's first examples are the full one's), made by the builder without loading the data set."""
  caption_vocab_size(data_name)
  from jaxgen.data.builders.shapes import shapes_split_arrays
  arrays = shapes_split_arrays("test", num)
  bad = [f for f in features if f not in arrays]
  if bad:
    raise ValueError(f"held-out examples have no {bad}; choose from: {', '.join(arrays)}")
  return {f: arrays[f] for f in features}


def heldout_captions(data_name: str, num: int):
  """The captions of the first `num` held-out examples of a captioned data set (computed without loading it)."""
  caption_vocab_size(data_name)
  from jaxgen.data.builders import shapes as S
  return [S.caption(S.make_scene("test", i)) for i in range(num)]

