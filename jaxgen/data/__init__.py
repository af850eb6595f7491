"""Data: one door for every family.

  get_dataset_spec(name)           what a data set is (jaxgen.data.specs; no TensorFlow import)
  load_split(config, split)        a whole split in memory as numpy arrays, never a dropped remainder
  load_heldout(config)             the data set's evaluation split (its spec's eval_split), as load_split
  train_data_fn(config)            start_step -> iterator of this process's training batches (exact resume)
  example_batch(config, batch)     the shapes and dtypes of a global training batch (jax.ShapeDtypeStruct)
`config` is an experiment config (fields data.name, data.data_dir, data.download, data.random_flip, seed,
batch_size). Images come from TFDS (digits also straight from scikit-learn, without TensorFlow); points from
jaxgen.data.toy2d.

Importing jaxgen.data registers jaxgen's offline TFDS builders ('digits', 'shapes'), so that
`import jaxgen.data; tfds.load('shapes')` works as for any TFDS data set (tensorflow_datasets is imported, about
0.4 s; TensorFlow is not).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator

import numpy as np

from jaxgen.data.specs import DATASETS, DatasetSpec, get_dataset_spec  # noqa: F401

HELDOUT_POINTS_SEED = 0xE7A1      # the fixed held-out points of the procedural 2-D data sets


def load_split(config, split: str) -> Dict[str, np.ndarray]:
  """The whole `split` of config.data.name: {'image': uint8, 'label': int32, ...} or {'points': float32}."""
  spec = get_dataset_spec(config.data.name)
  if spec.kind == "points":
    if split != spec.eval_split:
      raise ValueError(f"{spec.name} is procedural: its training data is an endless stream; the held-out "
                       f"split is {spec.eval_split!r}, not {split!r}")
    from jaxgen.data.toy2d import sample_toy2d
    rng = np.random.default_rng([0, HELDOUT_POINTS_SEED])
    return {"points": sample_toy2d(spec.name, spec.num_test, rng)}
  if spec.name == "digits":
    from jaxgen.data.builders.digits import digits_split_arrays
    image, label = digits_split_arrays(split)
    return {"image": image, "label": label}
  from jaxgen.data import tfds
  return tfds.load_split_numpy(spec.name, split, config.data.get("data_dir"), download=config.data.get("download", True))


def load_heldout(config) -> Dict[str, np.ndarray]:
  """The held-out data every evaluation reads: load_split of the data set's evaluation split
  (get_dataset_spec(name).eval_split; 'test' for the data sets jaxgen has today), never a literal name."""
  return load_split(config, get_dataset_spec(config.data.name).eval_split)


def train_data_fn(config) -> Callable[[int], Iterator[Dict[str, Any]]]:
  """Prepare the training data now (fails within seconds if it cannot) and return
  start_step -> iterator of process-local batches, chosen by the data set's kind. Assumes a validated config
  (jaxgen.registry.validate_config checks data.pipeline)."""
  spec = get_dataset_spec(config.data.name)
  if spec.kind == "points":
    from jaxgen.data.toy2d import toy2d_iterator
    return lambda start_step: toy2d_iterator(spec.name, global_batch_size=config.batch_size, seed=config.seed,
                                             start_step=start_step)
  from jaxgen.data import streaming, tfds
  if config.data.get("pipeline", "memory") == "streaming":
    streaming.prepare(config.data)
    return lambda start_step: streaming.make_train_iterator(config.data, global_batch_size=config.batch_size,
                                                            seed=config.seed, start_step=start_step)
  tfds.prepare(spec.name, config.data.get("data_dir"), config.data.get("download", True))
  return lambda start_step: tfds.make_train_iterator(config.data, global_batch_size=config.batch_size,
                                                     seed=config.seed, start_step=start_step)


_FEATURE_DTYPES = {"image": np.uint8, "points": np.float32, "label": np.int32, "attributes": np.int32,
                   "tokens": np.int32}


def example_batch(config, batch_size: int = None) -> Dict[str, Any]:
  """jax.ShapeDtypeStruct of each device feature of a global batch (for jax.eval_shape of a family's init)."""
  import jax
  spec = get_dataset_spec(config.data.name)
  b = batch_size or config.batch_size
  shapes = {"image": spec.event_shape, "points": spec.event_shape, "label": ()}
  shapes.update(dict(spec.feature_shapes))
  return {f: jax.ShapeDtypeStruct((b,) + tuple(shapes[f]), _FEATURE_DTYPES[f]) for f in spec.device_features}


def _register_builders() -> None:
  """Define jaxgen's TFDS builder classes, which registers them with TFDS by name."""
  import jaxgen.data.builders.digits  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  import jaxgen.data.builders.shapes  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import


_register_builders()
