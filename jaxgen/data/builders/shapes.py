"""TFDS builder `shapes`: procedurally drawn 32x32 RGB scenes of one to three shapes, with labels and captions.

Every example is a pure function of (split, index): a fixed integer hash (SplitMix64) of (seed, split, index,
draw) drives every choice, so the data are identical on every machine and numpy version, and build offline.

Scene
  background  one of BACKGROUNDS (dark and mid tones, a faint vertical gradient), never a shape colour
  objects     1 to 3, each in its own quadrant of the image (top left, top right, bottom left, bottom right),
              jittered by up to 2 px; kind in SHAPES, colour in COLOURS, size in SIZES (radius 4 or 7 px)
  rendering   4x supersampled masks averaged down (anti-aliased edges)
Features
  image       uint8 (32, 32, 3)
  label       the first object's kind (0..len(SHAPES)-1): a class label for class-conditional models
  attributes  int32 (1 + 4 * MAX_OBJECTS,) = [number of objects, then per object slot: kind + 1, colour + 1,
              size + 1, quadrant + 1] (0 = no object in that slot), objects in reading order (quadrant order)
  caption     English text from the attributes, with each attribute bound to its object:
                1 object:  "a small red circle"
                2 objects: "a small red circle above a large blue square" (above / below / to the left of /
                           to the right of, from the quadrants)
                3 objects: "a small red circle, a large blue square and a small green star"
  tokens      int32 (MAX_TOKENS,): the caption's words as VOCAB ids, 0-padded (`tokenize` / `detokenize`)
Splits: train (SPLIT_SIZES['train']) and test, stored in index order; the builder config 'tiny' (data set
'shapes_tiny') holds the first few hundred of each, for tests and smoke runs.
Outlined (builder configs 'outlined' and 'outlined_tiny', data sets 'shapes_outlined' / 'shapes_outlined_tiny'):
the same scenes (index i of a split is the same scene, attributes, label and caption as in `shapes`), each shape
drawn as an outline OUTLINE_PX wide in its colour instead of filled (`render(scene, outline_px=OUTLINE_PX)`:
the supersampled inside-mask keeps only the points within OUTLINE_PX of its edge, by a Euclidean distance
transform). CoGAN's second domain (jaxgen.gan.cogan). The filled rendering is unchanged.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from jaxgen.data.builders import MASK64, splitmix64

SHAPES = ("circle", "square", "triangle", "star", "diamond")
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 235), "yellow": (235, 215, 40),
           "purple": (170, 60, 210), "cyan": (40, 215, 220)}
COLOUR_NAMES = tuple(COLOURS)
SIZES = ("small", "large")
RADII = (4.0, 7.0)
BACKGROUNDS = ((20, 20, 24), (60, 60, 64), (110, 110, 116), (40, 30, 20), (20, 36, 30))
QUADRANTS = ("top left", "top right", "bottom left", "bottom right")
MAX_OBJECTS = 3
NUM_ATTRIBUTES = 1 + 4 * MAX_OBJECTS
IMAGE_SIZE = 32
SUPERSAMPLE = 4
JITTER = 2
MAX_TOKENS = 24
VOCAB = ("<pad>", "a", ",", "and", "above", "below", "to", "the", "left", "right", "of") + SIZES + COLOUR_NAMES + SHAPES
SPLIT_SIZES = {"train": 20_000, "test": 2_000}
TINY_SPLIT_SIZES = {"train": 256, "test": 64}
OUTLINE_PX = 1.75                      # the outline's width in output pixels (7 supersampled pixels)
_SEED = 0x5_4A9E5
_SPLIT_IDS = {"train": 1, "test": 2}


class _Draws:
  """Deterministic draws for one example: the k-th draw hashes (seed, split, index, k)."""

  def __init__(self, split: str, index: int):
    self._base = splitmix64(splitmix64(_SEED ^ _SPLIT_IDS[split]) ^ index)
    self._k = 0

  def integer(self, n: int) -> int:
    self._k += 1
    return splitmix64(self._base ^ (self._k * 0xD1B54A32D192ED03 & MASK64)) % n


@dataclasses.dataclass(frozen=True)
class Scene:
  background: int
  objects: tuple   # ((kind, colour, size, quadrant, cx, cy), ...) in quadrant order


def make_scene(split: str, index: int) -> Scene:
  d = _Draws(split, index)
  n = 1 + d.integer(MAX_OBJECTS)
  quadrants = list(range(4))
  for i in range(3, 0, -1):                      # a deterministic shuffle of the quadrants
    j = d.integer(i + 1)
    quadrants[i], quadrants[j] = quadrants[j], quadrants[i]
  objects = []
  for q in sorted(quadrants[:n]):
    kind, colour, size = d.integer(len(SHAPES)), d.integer(len(COLOUR_NAMES)), d.integer(len(SIZES))
    cx = 8 + 16 * (q % 2) + d.integer(2 * JITTER + 1) - JITTER
    cy = 8 + 16 * (q // 2) + d.integer(2 * JITTER + 1) - JITTER
    objects.append((kind, colour, size, q, cx, cy))
  return Scene(background=d.integer(len(BACKGROUNDS)), objects=tuple(objects))


_FINE = (np.arange(IMAGE_SIZE * SUPERSAMPLE) + 0.5) / SUPERSAMPLE      # pixel-centre coordinates, fine grid


def _mask(kind: int, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
  """Inside-mask of a shape of radius r centred at 0, at fine-grid offsets x (1, w) and y (h, 1)."""
  name = SHAPES[kind]
  if name == "circle":
    return x * x + y * y <= r * r
  if name == "square":
    s = r * 0.85
    return (np.abs(x) <= s) & (np.abs(y) <= s)
  if name == "diamond":
    return np.abs(x) + np.abs(y) <= r * 1.15
  if name == "triangle":                                  # pointing up, centred on its bounding box
    top, bottom = -r, r * 0.8
    half = (y - top) / (bottom - top) * r
    return (y >= top) & (y <= bottom) & (np.abs(x) <= half)
  # star: five points (radius r) and five valleys (radius 0.45 r), the edge straight in 1/radius between them
  angle = np.arctan2(x, -y)
  sector = np.mod(angle, 2 * np.pi / 5) - np.pi / 5       # offset from the nearest point's angle
  t = np.abs(sector) / (np.pi / 5)                        # 0 at a valley, 1 at a point
  edge = 1.0 / (t / r + (1 - t) / (0.45 * r))
  return np.sqrt(x * x + y * y) <= edge


def _outline(m: np.ndarray, width_px: float) -> np.ndarray:
  """The points of the fine-grid inside-mask `m` within `width_px` output pixels of its edge (the window's and the
  image's borders count as edge: a shape cut by the image border is closed there)."""
  from scipy import ndimage  # pylint: disable=import-outside-toplevel
  dist = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]    # fine pixels to the nearest outside point
  return m & (dist <= width_px * SUPERSAMPLE)


def render(scene: Scene, outline_px: float = 0.0) -> np.ndarray:
  """The scene as uint8 (32, 32, 3), anti-aliased by 4x supersampling (each shape drawn in its bounding box);
  `outline_px` > 0: each shape drawn as an outline that wide (the 'outlined' configs) instead of filled."""
  n = IMAGE_SIZE * SUPERSAMPLE
  bg = np.asarray(BACKGROUNDS[scene.background], np.float32)
  shade = 1.0 + 0.12 * (np.linspace(-1, 1, n, dtype=np.float32)[:, None, None])
  img = np.broadcast_to(bg * shade, (n, n, 3)).copy()
  for kind, colour, size, _, cx, cy in scene.objects:
    r = RADII[size]
    lo_x, hi_x = max(int((cx - r - 1) * SUPERSAMPLE), 0), min(int((cx + r + 1) * SUPERSAMPLE), n)
    lo_y, hi_y = max(int((cy - r - 1) * SUPERSAMPLE), 0), min(int((cy + r + 1) * SUPERSAMPLE), n)
    m = _mask(kind, _FINE[None, lo_x:hi_x] - cx, _FINE[lo_y:hi_y, None] - cy, r)
    if outline_px > 0:
      m = _outline(m, outline_px)
    img[lo_y:hi_y, lo_x:hi_x][m] = np.asarray(COLOURS[COLOUR_NAMES[colour]], np.float32)
  img = img.reshape(IMAGE_SIZE, SUPERSAMPLE, IMAGE_SIZE, SUPERSAMPLE, 3).mean(axis=(1, 3))
  return np.clip(np.round(img), 0, 255).astype(np.uint8)


def attributes(scene: Scene) -> np.ndarray:
  out = np.zeros((NUM_ATTRIBUTES,), np.int32)
  out[0] = len(scene.objects)
  for i, (kind, colour, size, q, _, _) in enumerate(scene.objects):
    out[1 + 4 * i: 5 + 4 * i] = (kind + 1, colour + 1, size + 1, q + 1)
  return out


def _phrase(obj) -> str:
  kind, colour, size = obj[:3]
  return f"a {SIZES[size]} {COLOUR_NAMES[colour]} {SHAPES[kind]}"


def _relation(qa: int, qb: int) -> str:
  """Where quadrant qa lies relative to qb."""
  ra, ca, rb, cb = qa // 2, qa % 2, qb // 2, qb % 2
  if ra != rb:
    return "above" if ra < rb else "below"
  return "to the left of" if ca < cb else "to the right of"


def caption(scene: Scene) -> str:
  objs = scene.objects
  if len(objs) == 1:
    return _phrase(objs[0])
  if len(objs) == 2:
    return f"{_phrase(objs[0])} {_relation(objs[0][3], objs[1][3])} {_phrase(objs[1])}"
  return f"{_phrase(objs[0])} , {_phrase(objs[1])} and {_phrase(objs[2])}".replace(" ,", ",")


def tokenize(text: str, vocab=VOCAB, max_tokens: int = MAX_TOKENS) -> np.ndarray:
  """(max_tokens,) int32 ids of the caption's words and commas in `vocab` (id 0 the pad), 0-padded."""
  words = text.replace(",", " ,").split()
  unknown = [w for w in words if w not in vocab]
  if unknown or len(words) > max_tokens:
    raise ValueError(f"caption {text!r}: words {unknown} not in the vocabulary or longer than {max_tokens} tokens")
  ids = np.zeros((max_tokens,), np.int32)
  ids[:len(words)] = [vocab.index(w) for w in words]
  return ids


def detokenize(ids) -> str:
  return " ".join(VOCAB[i] for i in np.asarray(ids) if i).replace(" ,", ",")


def example(split: str, index: int, outline_px: float = 0.0) -> dict:
  scene = make_scene(split, index)
  text = caption(scene)
  return {"image": render(scene, outline_px), "label": scene.objects[0][0], "attributes": attributes(scene),
          "caption": text, "tokens": tokenize(text)}


def shapes_split_arrays(split: str, num: int = None, outline_px: float = 0.0) -> dict:
  """The first `num` (default all) examples of `split` as numpy arrays, without TFDS or TensorFlow
  (`outline_px` > 0: the outlined rendering)."""
  if split not in SPLIT_SIZES:
    raise ValueError(f"unknown shapes split {split!r}; choose one of: {', '.join(SPLIT_SIZES)}")
  exs = [example(split, i, outline_px) for i in range(SPLIT_SIZES[split] if num is None else num)]
  return {k: np.stack([e[k] for e in exs]) if k != "caption" else np.asarray([e[k] for e in exs], object)
          for k in exs[0]}


def _tfds():
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  return tfds


class Shapes(_tfds().core.GeneratorBasedBuilder):
  """One to three coloured shapes on 32x32 backgrounds, with attribute labels and captions; offline."""

  VERSION = _tfds().core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [_tfds().core.BuilderConfig(name="default", description="20,000 train / 2,000 test"),
                     _tfds().core.BuilderConfig(name="tiny", description="256 train / 64 test (tests)"),
                     _tfds().core.BuilderConfig(name="outlined", description="the same scenes, shapes outlined"),
                     _tfds().core.BuilderConfig(name="outlined_tiny", description="outlined, 256 train / 64 test")]

  def _info(self):
    tfds = _tfds()
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3)),
            "label": tfds.features.ClassLabel(names=list(SHAPES)),
            "attributes": tfds.features.Tensor(shape=(NUM_ATTRIBUTES,), dtype=np.int32),
            "caption": tfds.features.Text(),
            "tokens": tfds.features.Tensor(shape=(MAX_TOKENS,), dtype=np.int32),
        }),
        supervised_keys=("image", "label"), disable_shuffling=True)   # examples stay in index order

  def _split_generators(self, dl_manager):
    del dl_manager
    name = self.builder_config.name
    sizes = TINY_SPLIT_SIZES if name.endswith("tiny") else SPLIT_SIZES
    outline = OUTLINE_PX if name.startswith("outlined") else 0.0
    return {split: self._generate_examples(split, n, outline) for split, n in sizes.items()}

  def _generate_examples(self, split, n, outline_px=0.0):
    for i in range(n):
      yield i, example(split, i, outline_px)
