"""Whether conditional samples show what was asked: the data set's attribute network on the samples against
the attributes of the held-out examples whose conditions were asked for (the general form of "label = asked").

  digits   'label' condition: label_accuracy = the network's digit equals the asked one
  shapes   'label' condition (the first object's kind): label_accuracy = some quadrant shows the asked kind;
           'tokens' condition (the caption): for each asked object, some quadrant shows its kind (attr_kind),
           its kind and colour (attr_colour), its kind, colour and size (attr_size), its colour whatever the
           kind (attr_colour_alone); attr_count = the number
           of objects; attr_quadrant_kind / _colour / _size = the per-quadrant heads equal the scene's
Each metric comes with `<name>_chance`: the same agreement against the asked attributes of other examples (a
fixed permutation), i.e. what an unconditional model of the same samples would score.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

CHANCE_SEED = 0xC4A


def asked_targets(data_name: str, split: Dict[str, np.ndarray], features: Sequence[str]) -> Dict[str, np.ndarray]:
  """What the conditions taken from `split` ask for: {'label': (N,)} and/or {'attributes': (N, A)}."""
  out = {}
  if "label" in features and "label" in split:
    out["label"] = np.asarray(split["label"])
  # a caption asks for what it says; an image (unCLIP's decoder conditioned on it) for what it shows
  if ("tokens" in features or "image" in features) and "attributes" in split:
    out["attributes"] = np.asarray(split["attributes"])
  return out


def _shapes_objects(attributes):
  """(count (N,), objects (N, 3, 4) of (kind, colour, size, quadrant) with 0 = none), from the builder's
  attribute vectors."""
  att = np.asarray(attributes)
  return att[:, 0], att[:, 1:13].reshape(-1, 3, 4)


def _agreement(data_name: str, pred: Dict[str, np.ndarray], asked: Dict[str, np.ndarray]) -> Dict[str, float]:
  out = {}
  if data_name == "digits":
    if "label" in asked:
      out["label_accuracy"] = float(np.mean(pred["label"] == asked["label"]))
    return out
  kinds = np.stack([pred[f"q{q}_kind"] for q in range(4)], 1)            # (N, 4), 0 = no object
  colours = np.stack([pred[f"q{q}_colour"] for q in range(4)], 1)
  sizes = np.stack([pred[f"q{q}_size"] for q in range(4)], 1)
  if "label" in asked:
    out["label_accuracy"] = float(np.mean(np.any(kinds == asked["label"][:, None] + 1, axis=1)))
  if "attributes" in asked:
    count, objs = _shapes_objects(asked["attributes"])
    out["attr_count"] = float(np.mean(pred["count"] + 1 == count))
    hit = {"kind": [], "colour": [], "size": [], "colour_alone": []}
    for slot in range(3):
      present = objs[:, slot, 0] > 0
      k, c, s = (objs[:, slot, j][:, None] for j in range(3))
      has_k = kinds == k
      has_c = has_k & (colours == c)
      has_s = has_c & (sizes == s)
      for name, m in (("kind", has_k), ("colour", has_c), ("size", has_s), ("colour_alone", colours == c)):
        hit[name].append(np.any(m, axis=1)[present])
    for name, v in hit.items():
      out[f"attr_{name}"] = float(np.mean(np.concatenate(v)))
    quad = {"kind": kinds, "colour": colours, "size": sizes}
    want = {key: np.zeros((len(count), 4), np.int64) for key in quad}
    for slot in range(3):
      q = objs[:, slot, 3]
      for j, key in enumerate(("kind", "colour", "size")):
        rows = np.flatnonzero(q > 0)
        want[key][rows, q[rows] - 1] = objs[rows, slot, j]
    for key in quad:
      out[f"attr_quadrant_{key}"] = float(np.mean(quad[key] == want[key]))
  return out


def agreement(data_name: str, logits: Dict[str, np.ndarray], asked: Dict[str, np.ndarray]) -> Dict[str, float]:
  """The agreement metrics above (and their chance levels) from the attribute network's logits."""
  if not asked:
    return {}
  pred = {k: np.asarray(v).argmax(-1) for k, v in logits.items()}
  out = _agreement(data_name, pred, asked)
  n = len(next(iter(asked.values())))
  perm = np.random.default_rng(CHANCE_SEED).permutation(n)
  chance = _agreement(data_name, pred, {k: v[perm] for k, v in asked.items()})
  out.update({f"{k}_chance": v for k, v in chance.items()})
  return out
