"""Feature networks for the offline data sets (`digits`, `shapes`): a small CNN trained on the real training split.

One network per data set serves two purposes:
  a feature space for FID / KID / precision-recall (`features(images)`: the 128-d penultimate layer), i.e.
  fid_digits and fid_shapes, computable offline where Inception's weights are not at hand;
  an attribute classifier that says whether a sample shows what was asked (`predict(images)`), with its
  held-out accuracy per attribute (`test_accuracy`).
Targets ('heads'): digits -> 'label' (10 classes); shapes -> for each quadrant q of the image its object's
'kind' (none + 5), 'colour' (none + 6) and 'size' (none + 2) (each quadrant holds at most one object, so these
are exactly the scene's attributes), plus 'count' (1-3 objects).
Training is deterministic (fixed seed, fixed batch order, float32 on the CPU) and takes a minute or two;
the trained parameters are cached under <data_dir>/jaxgen_features/<name>-<VERSION>/ (`load_feature_net`
trains them on first use and reads them afterwards).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

VERSION = "v1"
FEATURE_DIM = 128


def heads_for(name: str) -> Dict[str, int]:
  """{target name: number of classes} of the data set's feature network."""
  if name == "digits":
    return {"label": 10}
  if name in ("shapes", "shapes_tiny", "shapes_outlined", "shapes_outlined_tiny"):
    from jaxgen.data.builders import shapes as S
    out = {"count": S.MAX_OBJECTS}
    for q in range(4):
      out.update({f"q{q}_kind": len(S.SHAPES) + 1, f"q{q}_colour": len(S.COLOUR_NAMES) + 1,
                  f"q{q}_size": len(S.SIZES) + 1})
    return out
  raise ValueError(f"no feature network for data set {name!r}; choose one of: digits, shapes, shapes_outlined")


def targets_for(name: str, split: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """The heads' integer targets of a split (numpy arrays from jaxgen.data.load_split)."""
  if name == "digits":
    return {"label": split["label"]}
  att = split["attributes"]
  out = {"count": att[:, 0] - 1}
  for q in range(4):
    for key in ("kind", "colour", "size"):
      out[f"q{q}_{key}"] = np.zeros(len(att), np.int32)
  for slot in range(3):
    kind, colour, size, quad = (att[:, 1 + 4 * slot + j] for j in range(4))
    for q in range(4):
      here = quad == q + 1
      out[f"q{q}_kind"][here], out[f"q{q}_colour"][here], out[f"q{q}_size"][here] = kind[here], colour[here], size[here]
  return out


class FeatureCNN(nn.Module):
  heads: Dict[str, int]
  channels: Sequence[int] = (32, 64, 128)

  @nn.compact
  def __call__(self, x):
    """x: images in [-1, 1] (B, H, W, C) -> (features (B, FEATURE_DIM), {head: logits})."""
    h = x
    for i, ch in enumerate(self.channels):
      h = nn.relu(nn.Conv(ch, (3, 3), strides=(1 if i == 0 else 2,) * 2, padding="SAME", name=f"conv_{i}")(h))
    h = h.reshape(h.shape[0], -1)
    feats = nn.relu(nn.Dense(FEATURE_DIM, name="features")(h))
    return feats, {k: nn.Dense(n, name=f"head_{k}")(feats) for k, n in self.heads.items()}


def padded_outputs(apply, images, batch_size: int, *, progress: Optional[str] = None, log=None):
  """(features, {head: logits}) as numpy of apply(batch) -> (features, {head: logits}) over `images` in batches of
  `batch_size`, the last one padded with copies of its last image whose outputs are dropped: one compiled shape
  for any N, each image's outputs its own (the network is in inference mode). `progress`: the pass's name in
  progress lines (jaxgen.train.logging.TaskProgress, to `log`); None: silent."""
  bar = None
  if progress is not None:
    from jaxgen.train.logging import TaskProgress
    bar = TaskProgress(len(images), progress, "img", log=log, note=f"batches of {batch_size}; the first may compile")
  feats, logits = [], {}
  for i in range(0, len(images), batch_size):
    batch = np.asarray(images[i:i + batch_size])
    n = len(batch)
    if n < batch_size:
      batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - n, axis=0)])
    f, out = apply(batch)
    feats.append(np.asarray(f)[:n])
    for k, v in out.items():
      logits.setdefault(k, []).append(np.asarray(v)[:n])
    if bar is not None:
      bar.update(n)
  return np.concatenate(feats), {k: np.concatenate(v) for k, v in logits.items()}


def _to_input(images):
  x = jnp.asarray(images)
  return x.astype(jnp.float32) / 127.5 - 1.0 if x.dtype == jnp.uint8 else jnp.clip(x.astype(jnp.float32), -1, 1)


@dataclasses.dataclass
class FeatureNet:
  name: str
  params: dict
  test_accuracy: Dict[str, float]
  batch_size: int = 500
  cache: str = ""          # its cache directory (reference statistics in its space are kept there too)

  @property
  def network(self) -> FeatureCNN:
    return FeatureCNN(heads_for(self.name))

  @functools.cached_property
  def _jitted(self):
    """One compiled forward per network (not a new jax.jit per call)."""
    return jax.jit(lambda p, x: self.network.apply({"params": p}, _to_input(x)))

  def outputs(self, images, *, progress: Optional[str] = None, log=None):
    """(features (N, 128), {head: logits (N, classes)}) as numpy, in padded batches of batch_size
    (`padded_outputs`: one compiled shape for any N; each image's outputs are its own; `progress`: its lines)."""
    return padded_outputs(lambda b: self._jitted(self.params, b), images, self.batch_size, progress=progress, log=log)

  def _apply(self, images):
    feats, logits = self.outputs(images)
    return feats, {k: v.argmax(axis=-1) for k, v in logits.items()}

  def features(self, images) -> np.ndarray:
    """(N, 128) float32 features of uint8 images or images in [-1, 1]."""
    return self._apply(images)[0]

  def predict(self, images) -> Dict[str, np.ndarray]:
    return self._apply(images)[1]


def train_feature_net(name: str, train: Dict[str, np.ndarray], test: Dict[str, np.ndarray], *, steps: int,
                      batch_size: int = 128, learning_rate: float = 1e-3, seed: int = 0) -> FeatureNet:
  heads = heads_for(name)
  net = FeatureCNN(heads)
  y_train, y_test = targets_for(name, train), targets_for(name, test)
  from jaxgen.eval.minibatch import fit_by_minibatches
  params = net.init(jax.random.PRNGKey(seed), _to_input(train["image"][:2]))["params"]

  def loss(p, batch):
    _, logits = net.apply({"params": p}, _to_input(batch["image"]))
    return sum(optax.softmax_cross_entropy_with_integer_labels(logits[k], batch[k]).mean() for k in heads)

  params = fit_by_minibatches(loss, params, optax.adam(learning_rate), {"image": train["image"], **y_train},
                              steps=steps, batch_size=batch_size, seed=seed, progress=f"{name} feature network")
  model = FeatureNet(name, params, {})
  pred = model.predict(test["image"])
  model.test_accuracy = {k: float(np.mean(pred[k] == y_test[k])) for k in heads}
  return model


TRAIN_STEPS = {"digits": 1500, "shapes": 3000, "shapes_tiny": 200, "shapes_outlined": 3000,
               "shapes_outlined_tiny": 200}


CACHE_ENV = "JAXGEN_FEATURE_CACHE"


def cache_root(data_dir: Optional[str]) -> str:
  """Where feature networks and reference statistics are cached: $JAXGEN_FEATURE_CACHE if set, else
  <data_dir>/jaxgen_features (data_dir: the TFDS data directory, default $TFDS_DATA_DIR or ~/tensorflow_datasets)."""
  if os.environ.get(CACHE_ENV):
    return os.path.expanduser(os.environ[CACHE_ENV])
  root = os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))
  return os.path.join(root, "jaxgen_features")


def cache_dir(name: str, data_dir: Optional[str], steps: Optional[int] = None) -> str:
  """The network trained for `steps` (default TRAIN_STEPS[name]) has its own directory: a shorter run for
  tests never stands in for the real one."""
  steps = steps or TRAIN_STEPS[name]
  suffix = "" if steps == TRAIN_STEPS[name] else f"-s{steps}"
  return os.path.join(cache_root(data_dir), f"{name}-{VERSION}{suffix}")


def load_feature_net(config, *, steps: Optional[int] = None) -> FeatureNet:
  """The feature network of config.data.name: read from its cache, or trained on the training split now
  (deterministic) and cached. steps: training steps (default config.eval.feature_net_steps if set, else
  TRAIN_STEPS[name])."""
  from flax import serialization
  from jaxgen.data import load_heldout, load_split
  name = config.data.name
  heads_for(name)
  steps = steps or (config.get("eval", {}).get("feature_net_steps") if "eval" in config else None) or TRAIN_STEPS[name]
  directory = cache_dir(name, config.data.get("data_dir"), steps)
  params_path, info_path = os.path.join(directory, "params.msgpack"), os.path.join(directory, "info.json")
  if os.path.exists(params_path) and os.path.exists(info_path):
    info = json.load(open(info_path))
    template = FeatureCNN(heads_for(name)).init(jax.random.PRNGKey(0), jnp.zeros((1,) + tuple(info["image_shape"])))
    params = serialization.from_bytes(template["params"], open(params_path, "rb").read())
    return FeatureNet(name, params, info["test_accuracy"], cache=directory)
  from jaxgen.train.logging import print_progress      # stderr: experiments.evaluate's stdout is its JSON record
  print_progress(f"training the {name} feature network ({steps} steps, once; cached in {directory})")
  train, test = load_split(config, "train"), load_heldout(config)
  model = train_feature_net(name, train, test, steps=steps)
  print_progress(f"{name} feature network: held-out accuracy " +
                 ", ".join(f"{k} {v:.4f}" for k, v in model.test_accuracy.items()))
  model.cache = directory
  os.makedirs(directory, exist_ok=True)
  # Each file appears whole (temporary name, then rename); the temporary names are per process, so commands
  # that train the same network at once (the training is deterministic) cannot write into each other's files.
  tmp = f"{params_path}.tmp{os.getpid()}"
  with open(tmp, "wb") as f:
    f.write(serialization.to_bytes(model.params))
  os.replace(tmp, params_path)
  with open(f"{info_path}.tmp{os.getpid()}", "w") as f:
    json.dump({"test_accuracy": model.test_accuracy, "image_shape": list(train["image"].shape[1:]),
               "train_steps": steps, "version": VERSION}, f, indent=2)
  os.replace(f"{info_path}.tmp{os.getpid()}", info_path)
  return model
