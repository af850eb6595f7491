"""The streaming input pipeline (`data.pipeline='streaming'`): random access into TFDS ArrayRecord files, a
global shuffle, sharded by process, nothing held in memory but the batches in flight.

The split is prepared once in TFDS's `array_record` format (under `<data_dir>/array_record`, beside the
TFRecord copy the in-memory pipeline reads) and read through `builder.as_data_source(split)`, which decodes
the examples asked for by index. The order is a pure function of (seed, step):

  epoch e is the permutation `numpy.random.default_rng([seed, e]).permutation(N)` of the whole split, cut into
  N // B global batches of B = batch_size (the remainder of each epoch is dropped); global step s is batch
  s mod (N // B) of epoch s // (N // B); process p of P takes rows [p B/P, (p+1) B/P) of it; a horizontal
  flip (data.random_flip) is drawn from default_rng([seed, e, index]).

So the iterator's state is the step, which the checkpoint already holds: a run resumed at step s reads
exactly the batches an uninterrupted run reads from s on, on any number of processes. Reading is done by a
pool of threads (`workers`), `prefetch` batches ahead of the trainer.
"""
from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from typing import Dict, Iterator, Optional

import numpy as np

PIPELINES = ("memory", "streaming")


def check_pipeline(data_config) -> None:
  name = data_config.get("pipeline", "memory")
  if name not in PIPELINES:
    raise ValueError(f"data.pipeline={name!r}; choose one of: {', '.join(PIPELINES)}")


def array_record_dir(data_dir) -> str:
  import tensorflow_datasets as tfds
  root = os.path.expanduser(data_dir) if data_dir else os.fspath(tfds.core.constants.DATA_DIR)
  return os.path.join(root, "array_record")


def prepare(data_config):
  """The TFDS builder of the data set in ArrayRecord format (built offline for jaxgen's own data sets;
  downloaded under the same rules as jaxgen.data.tfds.prepare otherwise)."""
  from jaxgen.data import tfds as jtfds
  return jtfds.prepare(data_config.name, array_record_dir(data_config.get("data_dir")),
                       bool(data_config.get("download", True)), file_format="array_record")


class GlobalOrder:
  """Which examples global step s holds (module docstring), for a split of `n` examples."""

  def __init__(self, n: int, global_batch: int, seed: int):
    if n < global_batch:
      raise ValueError(f"the split has {n} examples, fewer than one batch of {global_batch}")
    self.n, self.batch, self.seed = n, global_batch, int(seed)
    self.steps_per_epoch = n // global_batch
    self._cache = (None, None)

  def permutation(self, epoch: int) -> np.ndarray:
    cached = self._cache                      # one read: the reading threads may replace it meanwhile
    if cached[0] != epoch:
      cached = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n))
      self._cache = cached
    return cached[1]

  def indices(self, step: int, process_index: int = 0, process_count: int = 1):
    """(epoch, this process's example indices at `step`)."""
    epoch, k = divmod(int(step), self.steps_per_epoch)
    rows = self.permutation(epoch)[k * self.batch:(k + 1) * self.batch]
    local = self.batch // process_count
    return epoch, rows[process_index * local:(process_index + 1) * local]


def _flip(seed: int, epoch: int, index: int) -> bool:
  return bool(np.random.default_rng([seed, epoch, int(index)]).random() < 0.5)


def make_train_iterator(data_config, *, global_batch_size: int, seed: int, start_step: int = 0,
                        process_index: Optional[int] = None, process_count: Optional[int] = None,
                        workers: int = 8, prefetch: int = 4) -> Iterator[Dict[str, np.ndarray]]:
  """This process's batches from `start_step` on: {'image': uint8 (b, H, W, C), 'label': int32 (b,), ...}."""
  from jaxgen.data.specs import get_dataset_spec
  spec = get_dataset_spec(data_config.name)
  if process_index is None or process_count is None:
    import jax
    process_index, process_count = jax.process_index(), jax.process_count()
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise ValueError(f"global_batch_size {global_batch_size} must be a positive multiple of process_count "
                     f"{process_count}")
  builder = prepare(data_config)
  source = builder.as_data_source(split=spec.train_split)
  order = GlobalOrder(len(source), global_batch_size, seed)
  flip = bool(data_config.get("random_flip", False))
  features = spec.device_features

  def load(step):
    epoch, idx = order.indices(step, process_index, process_count)
    examples = [source[int(i)] for i in idx]
    batch = {}
    for f in features:
      x = np.stack([np.asarray(ex[f]) for ex in examples])
      batch[f] = x.astype(np.uint8) if f == "image" else (x.astype(np.int32) if np.issubdtype(x.dtype, np.integer)
                                                           else x)
    if flip:
      mask = np.array([_flip(order.seed, epoch, i) for i in idx])
      batch["image"] = np.where(mask[:, None, None, None], batch["image"][:, :, ::-1], batch["image"])
    return batch

  return _Prefetcher(load, int(start_step), workers, prefetch)


class _Prefetcher:
  """Batches load(step), load(step + 1), ... read `prefetch` ahead by a thread pool, yielded in order."""

  def __init__(self, load, start_step: int, workers: int, prefetch: int):
    self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="jaxgen-data")
    self._load, self._next, self._ahead = load, start_step, max(1, prefetch)
    self._pending = queue.SimpleQueue()
    self._count = 0
    self._lock = threading.Lock()
    for _ in range(self._ahead):
      self._submit()

  def _submit(self):
    self._pending.put(self._pool.submit(self._load, self._next))
    self._next += 1

  def __iter__(self):
    return self

  def __next__(self):
    with self._lock:
      future = self._pending.get()
      self._submit()
    return future.result()

  def close(self):
    self._pool.shutdown(wait=False, cancel_futures=True)

  def __del__(self):
    try:
      self.close()
    except Exception:  # pylint: disable=broad-except
      pass
