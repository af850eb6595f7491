"""The streaming input pipeline (`data.pipeline='streaming'`): random access into TFDS ArrayRecord files
through Grain, a global shuffle, sharded by process, nothing held in memory but the batches in flight.

The split is prepared once in TFDS's `array_record` format (under `<data_dir>/array_record`, beside the
TFRecord copy the in-memory pipeline reads) and read through `builder.as_data_source(split)`, which decodes
the examples asked for by index. The order is a Grain `MapDataset` (`global_order`), a pure function of
(seed, step):

  `MapDataset.range(N).shuffle(seed').batch(B, drop_remainder=True).repeat()`: epoch e is Grain's index
  shuffle of the whole split (its seed is seed' + e, seed' = `shuffle_seed(seed)`), cut into N // B global
  batches of B = batch_size (the remainder of each epoch is dropped); element s of it is global step s;
  process p of P takes rows [p B/P, (p+1) B/P) of it; a horizontal flip (data.random_flip) is drawn from
  numpy's default_rng([seed, e, index]).

Because the dataset is random access, "this process's batch at step s" is element s of it, and a run resumed
at step s iterates it from element s. So the iterator's state is the step, which the Orbax checkpoint already
holds: we do not save Grain's iterator state (`get_state`), which would be one more item per process in every
checkpoint for a number the step already determines. A resumed run reads exactly the batches an uninterrupted
run reads from s on, for any number of processes, reading threads or worker processes.

Reading: `data.workers` worker processes (Grain's `mp_prefetch`: spawned, each decodes whole batches, element
s goes to worker s mod W and the batches come back in step order), each reading with a few threads and a few
batches buffered (`grain.ReadOptions`); data.workers=0 (the default) reads with threads in the training
process. The batches are the same for any number of workers and threads.
"""
from __future__ import annotations

import functools
import os
import threading
import time
from typing import Dict, Iterator, Optional

import numpy as np

PIPELINES = ("memory", "streaming")


def check_pipeline(data_config) -> None:
  """data.pipeline and data.workers (checked here, once, by jaxgen.registry.validate_config)."""
  name = data_config.get("pipeline", "memory")
  if name not in PIPELINES:
    raise ValueError(f"data.pipeline={name!r}; choose one of: {', '.join(PIPELINES)}")
  workers = data_config.get("workers", 0)
  if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
    raise ValueError(f"data.workers={workers!r} must be an int >= 0 (0: read in the training process)")


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


def shuffle_seed(seed: int) -> int:
  """Grain's shuffle seed (32 bits) from the run's seed. Grain seeds epoch e with seed + e, so seeds 0 and 1
  would see the same epochs shifted by one; hashing the run's seed keeps nearby seeds' orders unrelated."""
  return int(np.random.SeedSequence(int(seed)).generate_state(1)[0])


def _rows(lo: int, hi: int, batch: np.ndarray) -> np.ndarray:
  return batch[lo:hi]


def global_order(n: int, global_batch: int, seed: int, process_index: int = 0, process_count: int = 1):
  """The Grain MapDataset whose element s is this process's example indices (int64 (B/P,)) at global step s
  (module docstring), for a split of `n` examples."""
  import grain
  if n < global_batch:
    raise ValueError(f"the split has {n} examples, fewer than one batch of {global_batch}")
  local = global_batch // process_count
  return (grain.MapDataset.range(n).shuffle(seed=shuffle_seed(seed)).batch(global_batch, drop_remainder=True)
          .repeat().map(functools.partial(_rows, process_index * local, (process_index + 1) * local)))


def _flip(seed: int, epoch: int, index: int) -> bool:
  return bool(np.random.default_rng([seed, epoch, int(index)]).random() < 0.5)


def _load(source, features, flip: bool, seed: int, steps_per_epoch: int, step: int, idx: np.ndarray):
  """The batch {feature: array} of the examples `idx` of global step `step`."""
  examples = source.__getitems__([int(i) for i in idx])
  batch = {}
  for f in features:
    x = np.stack([np.asarray(ex[f]) for ex in examples])
    batch[f] = x.astype(np.uint8) if f == "image" else (x.astype(np.int32) if np.issubdtype(x.dtype, np.integer)
                                                         else x)
  if flip:
    epoch = step // steps_per_epoch
    mask = np.array([_flip(seed, epoch, i) for i in idx])
    batch["image"] = np.where(mask[:, None, None, None], batch["image"][:, :, ::-1], batch["image"])
  return batch


def _worker_init(worker_index: int, worker_count: int) -> None:
  """In each Grain worker process: outlive a Ctrl-C (ignored) or a SIGTERM (exit 60 s later) sent to the whole
  process group, so that a trainer saving its checkpoint after the signal still gets its batches (the trainer's
  exit stops the workers: Grain closes them at exit, with SIGKILL after a timeout); and exit as soon as the
  trainer is gone (killed with SIGKILL or ended with os._exit, it would otherwise leave them blocked on a full
  queue for good)."""
  del worker_index, worker_count
  import signal
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.signal(signal.SIGTERM, lambda *_: _exit_after(60.0))
  parent = os.getppid()

  def watch():
    while os.getppid() == parent:
      time.sleep(1.0)
    os._exit(0)  # pylint: disable=protected-access

  threading.Thread(target=watch, daemon=True, name="jaxgen-data-parent-watch").start()


def _exit_after(seconds: float) -> None:
  timer = threading.Timer(seconds, os._exit, (0,))  # pylint: disable=protected-access
  timer.daemon = True
  timer.start()


def make_train_iterator(data_config, *, global_batch_size: int, seed: int, start_step: int = 0,
                        process_index: Optional[int] = None, process_count: Optional[int] = None,
                        workers: Optional[int] = None, threads: int = 4,
                        prefetch: int = 4) -> Iterator[Dict[str, np.ndarray]]:
  """This process's batches from `start_step` on: {'image': uint8 (b, H, W, C), 'label': int32 (b,), ...}.
  `workers` worker processes (None: data.workers, default 0: none), each (or this process) reading with
  `threads` threads, `prefetch` batches ahead. The iterator's `close()` stops the workers; they also exit on
  their own with this process."""
  import grain
  from jaxgen.data.specs import get_dataset_spec
  spec = get_dataset_spec(data_config.name)
  if process_index is None or process_count is None:
    import jax
    process_index, process_count = jax.process_index(), jax.process_count()
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise ValueError(f"global_batch_size {global_batch_size} must be a positive multiple of process_count "
                     f"{process_count}")
  workers = int(data_config.get("workers", 0)) if workers is None else int(workers)
  builder = prepare(data_config)
  source = builder.as_data_source(split=spec.train_split)
  order = global_order(len(source), global_batch_size, seed, process_index, process_count)
  load = functools.partial(_load, source, tuple(spec.device_features), bool(data_config.get("random_flip", False)),
                           int(seed), len(source) // global_batch_size)
  ds = order.map_with_index(load)[int(start_step):]
  ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, threads), prefetch_buffer_size=max(1, prefetch)))
  if workers > 0:
    from absl import flags
    if not flags.FLAGS.is_parsed():     # outside an absl app (tests, benchmarks): Grain reads its flags' defaults
      flags.FLAGS.mark_as_parsed()
    # Batches come back through a pipe, not Grain's shared memory: at a few hundred kB to a few MB one copy costs
    # little beside decoding them, and batches in flight when the trainer exits would be reported as leaked.
    ds = grain.experimental.WithOptionsIterDataset(ds, grain.experimental.DatasetOptions(min_shm_size=2**62))
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=max(1, prefetch)),
                        worker_init_fn=_worker_init)
  return iter(ds)
