"""TFDS data sets for jaxgen: registry, preparation, train iterators, eval splits.

Public API
  DATASETS / DatasetSpec / get_dataset_spec(name)   from jaxgen.data.specs (cheap: no TensorFlow import)
  DatasetUnavailableError                            raised by prepare() within seconds
  network_available(host, port, timeout)             the probe prepare() uses (overridable)
  prepare(name, data_dir=None, download=True)        -> a prepared tfds builder
  make_train_iterator(data_config, *, global_batch_size, seed, start_step=0, ...)
  load_split_numpy(name, split, data_dir=None)       -> the split's device features as numpy arrays

Images stay uint8 through the host pipeline; scaling to [-1, 1] happens on the device.
The training data order is a pure function of (seed, step, process): see
`jaxgen.data.ordering`.
"""
from __future__ import annotations

import os
import socket
import threading
from typing import Any, Callable, Iterator, Optional

from jaxgen.data.specs import DATASETS, DatasetSpec, get_dataset_spec  # noqa: F401  (re-exported)
from jaxgen.data.tf_import import import_tf

# name -> (module, TFDS builder class, builder config or None): the data sets jaxgen builds itself, offline.
OFFLINE_BUILDERS = {
    "digits": ("jaxgen.data.builders.digits", "Digits", None),
    "shapes": ("jaxgen.data.builders.shapes", "Shapes", "default"),
    "shapes_tiny": ("jaxgen.data.builders.shapes", "Shapes", "tiny"),
    "shapes_outlined": ("jaxgen.data.builders.shapes", "Shapes", "outlined"),
    "shapes_outlined_tiny": ("jaxgen.data.builders.shapes", "Shapes", "outlined_tiny"),
}

DOWNLOAD_HOST = "www.cs.toronto.edu"
DOWNLOAD_PORT = 443
PROBE_TIMEOUT_S = 3.0


class DatasetUnavailableError(RuntimeError):
  """The data set is not prepared and cannot be downloaded now."""


def get_dataset_spec(name: str) -> DatasetSpec:
  """The DatasetSpec of `name`; ValueError naming the allowed names otherwise."""
  try:
    return DATASETS[name]
  except (KeyError, TypeError):
    raise ValueError(f"unknown dataset {name!r}; choose one of: "
                     f"{', '.join(sorted(DATASETS))}") from None


def network_available(host: str = DOWNLOAD_HOST, port: int = DOWNLOAD_PORT,
                      timeout: float = PROBE_TIMEOUT_S) -> bool:
  """True if `host:port` resolves and accepts a TCP connection within `timeout` s.

  DNS resolution cannot be given a timeout, so the probe runs in a daemon thread
  and the whole check is bounded by `timeout`.
  """
  ok = []

  def _probe():
    try:
      with socket.create_connection((host, port), timeout=timeout):
        ok.append(True)
    except OSError:
      pass

  thread = threading.Thread(target=_probe, name="jaxgen-net-probe", daemon=True)
  thread.start()
  thread.join(timeout)
  return bool(ok)


def _clean_data_dir(data_dir) -> Optional[str]:
  if data_dir is None or str(data_dir) == "":
    return None
  return os.path.expanduser(os.fspath(data_dir))


def prepare(name: str, data_dir=None, download: bool = True, *,
            network_probe: Optional[Callable[[], bool]] = None, file_format: Optional[str] = None):
  """Returns a prepared TFDS builder for `name`, preparing it if possible.

  Our own data sets (OFFLINE_BUILDERS: `digits`, `shapes`) are built offline on first use. A catalogue data
  set (`cifar10`) is
  used if already prepared in `data_dir`; otherwise it is downloaded only when
  `download` is True and `network_probe()` (default: `network_available`)
  says the download host is reachable. Else DatasetUnavailableError is raised
  at once, saying where TFDS looked and how to prepare the data. There is never
  a fallback to other data.
  """
  spec = get_dataset_spec(name)
  import_tf()
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  data_dir = _clean_data_dir(data_dir)
  if name in OFFLINE_BUILDERS:
    module, cls, builder_config = OFFLINE_BUILDERS[name]
    import importlib  # pylint: disable=import-outside-toplevel
    builder_cls = getattr(importlib.import_module(module), cls)
    builder = builder_cls(data_dir=data_dir, **({"config": builder_config} if builder_config else {}),
                          **({"file_format": file_format} if file_format else {}))
    if not builder.is_prepared():
      try:
        builder.download_and_prepare()
      except Exception:  # pylint: disable=broad-except
        if not builder.is_prepared():  # not a lost race with another process
          raise
    return builder

  builder = tfds.builder(name, data_dir=data_dir, **({"file_format": file_format} if file_format else {}))
  if builder.is_prepared():
    return builder
  if not download:
    reason = "download=False"
  else:
    probe = network_probe if network_probe is not None else network_available
    if probe():
      builder.download_and_prepare()
      return builder
    reason = (f"its download host {DOWNLOAD_HOST}:{DOWNLOAD_PORT} is not reachable "
              f"(no network?)")
  raise DatasetUnavailableError(
      f"Dataset '{name}' is not prepared: TFDS looked in {builder.data_dir} "
      f"(data_dir {os.fspath(builder.data_dir_root)}) and found no prepared copy, and it "
      f"cannot be downloaded now because {reason}.\n{spec.prepare_hint}")


def _cast_features(tf, ex, features):
  """A TFDS example -> {feature: tensor}, integers as int32 (what the device gets)."""
  out = {}
  for f in features:
    x = ex[f]
    out[f] = x if f == "image" or not x.dtype.is_integer else tf.cast(x, tf.int32)
  return out


def load_split_numpy(name: str, split: str, data_dir=None, *,
                     download: bool = True) -> dict[str, Any]:
  """The whole `split` in memory: {'image': uint8 (N,H,W,C), 'label': int32 (N,), ...every feature of the
  data set's spec}. Never drops a remainder; for evaluation and for small data sets."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  spec = get_dataset_spec(name)
  builder = prepare(name, data_dir, download)
  # In batches (not batch_size=-1: one tensor of the whole split, which also trips tfds's mock data).
  ds = builder.as_dataset(split=split, shuffle_files=False, batch_size=1000)
  parts = [{k: np.asarray(v) for k, v in b.items() if k in spec.features} for b in tfds.as_numpy(ds)]
  if not parts:
    raise ValueError(f"{name}/{split} is empty")
  arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  image = arrays["image"] = arrays["image"].astype(np.uint8)
  if image.shape[1:] != spec.image_shape:
    raise ValueError(f"{name}/{split}: image shape {image.shape[1:]}, "
                     f"expected {spec.image_shape}")
  for k, v in arrays.items():
    if k != "image" and np.issubdtype(v.dtype, np.integer):
      arrays[k] = v.astype(np.int32)
  return arrays


def make_train_iterator(data_config, *, global_batch_size: int, seed: int,
                        start_step: int = 0, process_index: Optional[int] = None,
                        process_count: Optional[int] = None, encode_images=None,
                        encode_split=None, split: Optional[str] = None) -> Iterator[dict]:
  """Iterator of this process's training batches, starting at global `start_step`.

  Yields {'image': uint8 (local_batch, H, W, C), 'label': int32 (local_batch,), ...} (the spec's device
  features, jaxgen.data.specs) with local_batch = global_batch_size // process_count. `data_config` has
  fields `name`, `data_dir`, `random_flip`, `download`. The batch yielded for
  step s depends only on (seed, s, process_index, process_count), so a run
  resumed with start_step=s continues exactly where it stopped.

  `encode_images` (uint8 images (N, H, W, C) -> float32 arrays (N, ...)): this process's images are encoded
  once, in split order, before the batches are drawn, and the batches carry 'latent' instead of 'image' (a
  frozen first stage's cached latents, jaxgen.ldm.cache); the same examples in the same order otherwise.
  Needs random_flip off (a flipped image's latent is not the flipped latent).
  `encode_split` (the general form: {feature: numpy (N, ...)} of this process's split -> ({new feature: array
  (N, ...)}, features to drop)): the batches carry the new features (and lose the dropped ones), e.g. a frozen
  CLIP's cached embeddings (jaxgen.unclip.cache).
  `split`: a TFDS split string (default the spec's train split), e.g. 'train[:50%]': CoGAN's two domains are
  drawn from disjoint halves (jaxgen.gan.cogan).
  """
  from jaxgen.data import ordering  # pylint: disable=import-outside-toplevel
  spec = get_dataset_spec(data_config.name)
  if process_index is None or process_count is None:
    import jax  # pylint: disable=import-outside-toplevel
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in [0, {process_count})")
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise ValueError(f"global_batch_size {global_batch_size} must be a positive "
                     f"multiple of process_count {process_count}")
  if start_step < 0:
    raise ValueError(f"start_step must be >= 0, got {start_step}")
  local_batch = global_batch_size // process_count

  builder = prepare(spec.name, getattr(data_config, "data_dir", None),
                    bool(getattr(data_config, "download", True)))
  tf = import_tf()
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  split = split or spec.train_split
  if process_count > 1:
    split = tfds.even_splits(split, n=process_count)[process_index]
  ds = builder.as_dataset(split=split, shuffle_files=False)
  ds = ds.map(lambda ex: _cast_features(tf, ex, spec.device_features))
  if encode_images is not None or encode_split is not None:
    if data_config.random_flip:
      raise ValueError("cached encodings need data.random_flip=False: a flipped image's encoding is not the "
                       "flipped encoding")
    import numpy as np  # pylint: disable=import-outside-toplevel
    examples = list(tfds.as_numpy(ds))
    arrays = {k: np.stack([ex[k] for ex in examples]) for k in examples[0]}
    if encode_split is None:
      new, dropped = {"latent": np.asarray(encode_images(arrays["image"]), np.float32)}, ("image",)
    else:
      new, dropped = encode_split(arrays)
    cached = tf.data.Dataset.from_tensor_slices(new)
    ds = tf.data.Dataset.zip((ds, cached)).map(
        lambda ex, z: {**{k: v for k, v in ex.items() if k not in dropped}, **z})
  ds = ordering.ordered_batches(
      ds, local_batch=local_batch, seed=seed, start_step=start_step,
      stream_id=process_index, random_flip=bool(data_config.random_flip),
      what=f"{spec.name}/{split} (process {process_index} of {process_count})")
  return iter(tfds.as_numpy(ds))
