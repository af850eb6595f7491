"""Data parallelism with `jax.jit` over a ('data',) or ('data', 'model') mesh, sharded train state, and
multi-host setup.

Batches are sharded along their leading axis over the 'data' axis of every process's devices. The train state
(params, EMA, optimizer state) is replicated (`parallel.strategy='replicated'`, the default) or sharded
(`'fsdp'`, fully sharded data parallel): each tensor of at least `parallel.min_shard_size` elements is split
along its largest axis that the device count divides (over all mesh axes at once; over 'data' alone when only
that divides), smaller ones are replicated (the rule of big_vision's and MaxText's FSDP), and `jit` inserts
the all-gathers and reduce-scatters. `parallel.model_axis=K` makes the mesh 2-D, (devices/K, K), the batch
split over 'data' only. With several processes each one feeds its own slice of the global batch and
`jax.make_array_from_process_local_data` assembles the global array.
"""
from __future__ import annotations

import logging
from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
MODEL_AXIS = "model"
STRATEGIES = ("replicated", "fsdp")
PARALLEL_DEFAULTS = dict(strategy="replicated", model_axis=1, min_shard_size=2 ** 14)


def settings(config) -> dict:
  """config.parallel with the defaults filled in (a run from before the field existed is replicated)."""
  out = dict(PARALLEL_DEFAULTS)
  if config is not None and "parallel" in config:
    out.update({k: config["parallel"][k] for k in config["parallel"]})
  return out


def check_parallel_config(config, num_devices: int) -> None:
  s = settings(config)
  if s["strategy"] not in STRATEGIES:
    raise ValueError(f"parallel.strategy={s['strategy']!r}; choose one of: {', '.join(STRATEGIES)}")
  k = s["model_axis"]
  if not isinstance(k, int) or k < 1 or num_devices % k:
    raise ValueError(f"parallel.model_axis={k!r} must be a positive divisor of the device count ({num_devices})")
  if s["min_shard_size"] < 0:
    raise ValueError(f"parallel.min_shard_size={s['min_shard_size']} must be >= 0")


HEARTBEAT_TIMEOUT = 100      # seconds; JAX's default


def initialize_distributed(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
                           process_id: Optional[int] = None, initialization_timeout: int = 300,
                           heartbeat_timeout: int = HEARTBEAT_TIMEOUT) -> None:
  """Join a multi-process job. With no arguments JAX detects the cluster (TPU pods, SLURM, ...).

  Must run before any other JAX call. Only called when a run asks for it (`--multihost`).
  heartbeat_timeout: a process that has sent no heartbeat to the coordinator for this long (it died, e.g.
  kill -9, or its host is gone) is declared dead, and every other process is stopped with an error instead of
  waiting forever in a collective.
  """
  kwargs = {"heartbeat_timeout_seconds": int(heartbeat_timeout)}
  if coordinator_address:
    kwargs.update(coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id)
  jax.distributed.initialize(initialization_timeout=initialization_timeout, **kwargs)
  logging.info("process %d of %d, %d local / %d global devices", jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


def make_data_mesh() -> Mesh:
  """A 1-D mesh over all global devices, axis name 'data'."""
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def make_mesh(config=None) -> Mesh:
  """The run's mesh: ('data',) over every device, or ('data', 'model') with parallel.model_axis > 1."""
  k = settings(config)["model_axis"]
  if k == 1:
    return make_data_mesh()
  return Mesh(np.asarray(jax.devices()).reshape(-1, k), (DATA_AXIS, MODEL_AXIS))


def leaf_spec(shape, mesh: Mesh, min_size: int) -> P:
  """The FSDP rule for one tensor: split its largest axis that all devices (else the 'data' axis) divide."""
  if not shape or int(np.prod(shape)) < max(min_size, 1):
    return P()
  order = sorted(range(len(shape)), key=lambda i: -shape[i])
  names = tuple(mesh.axis_names)
  for axes, size in ((names, mesh.devices.size), ((DATA_AXIS,), mesh.shape[DATA_AXIS])):
    if size == 1:
      continue
    for i in order:
      if shape[i] % size == 0:
        spec = [None] * len(shape)
        spec[i] = axes if len(axes) > 1 else axes[0]
        return P(*spec)
  return P()


def state_shardings(abstract_state, mesh: Mesh, config=None):
  """A NamedSharding for every leaf of a (abstract) train state, by parallel.strategy."""
  s = settings(config)
  if s["strategy"] == "replicated":
    return jax.tree.map(lambda _: replicated(mesh), abstract_state)
  return jax.tree.map(lambda x: NamedSharding(mesh, leaf_spec(tuple(x.shape), mesh, s["min_shard_size"])),
                      abstract_state)


def bytes_per_device(tree) -> tuple:
  """(bytes of the tree on its first device, bytes of the whole tree): read from the arrays' shardings."""
  local = total = 0
  for x in jax.tree.leaves(tree):
    total += x.size * x.dtype.itemsize
    shard = x.sharding.shard_shape(x.shape) if hasattr(x, "sharding") else x.shape
    local += int(np.prod(shard)) * x.dtype.itemsize
  return local, total


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def global_batch(local_batch, mesh: Mesh):
  """Process-local numpy arrays (leading axis = this process's rows) -> global arrays sharded over 'data'."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def check_batch_size(global_batch_size: int, num_devices: int, num_processes: int = 1) -> None:
  """num_devices: the devices the batch is split over (the mesh's 'data' axis)."""
  if global_batch_size <= 0:
    raise ValueError(f"batch_size={global_batch_size} must be positive")
  if global_batch_size % num_devices:
    raise ValueError(f"batch_size={global_batch_size} is not divisible by the number of devices ({num_devices}); "
                     f"choose a multiple of {num_devices}")
  if global_batch_size % num_processes:
    raise ValueError(f"batch_size={global_batch_size} is not divisible by the number of processes ({num_processes})")


def fetch(tree):
  """Bring a tree to the host as numpy, working with multi-process arrays too (a sharded one is gathered)."""
  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      if x.sharding.is_fully_replicated:
        return np.asarray(x.addressable_shards[0].data)
      from jax.experimental import multihost_utils
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
  return jax.tree.map(one, tree)
