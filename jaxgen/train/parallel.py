"""Data parallelism with `jax.jit` over a 1-D ('data',) mesh, and multi-host setup.

Batches are sharded along their leading axis over every device of every process; params, EMA and
optimizer state are replicated. With several processes each one feeds its own slice of the global batch
and `jax.make_array_from_process_local_data` assembles the global array.
"""
from __future__ import annotations

import logging
from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def initialize_distributed(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
                           process_id: Optional[int] = None, initialization_timeout: int = 300) -> None:
  """Join a multi-process job. With no arguments JAX detects the cluster (TPU pods, SLURM, ...).

  Must run before any other JAX call. Only called when a run asks for it (`--multihost`).
  """
  kwargs = {}
  if coordinator_address:
    kwargs.update(coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id)
  jax.distributed.initialize(initialization_timeout=initialization_timeout, **kwargs)
  logging.info("process %d of %d, %d local / %d global devices", jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


def make_data_mesh() -> Mesh:
  """A 1-D mesh over all global devices, axis name 'data'."""
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def global_batch(local_batch, mesh: Mesh):
  """Process-local numpy arrays (leading axis = this process's rows) -> global arrays sharded over 'data'."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def check_batch_size(global_batch_size: int, num_devices: int, num_processes: int = 1) -> None:
  if global_batch_size <= 0:
    raise ValueError(f"batch_size={global_batch_size} must be positive")
  if global_batch_size % num_devices:
    raise ValueError(f"batch_size={global_batch_size} is not divisible by the number of devices ({num_devices}); "
                     f"choose a multiple of {num_devices}")
  if global_batch_size % num_processes:
    raise ValueError(f"batch_size={global_batch_size} is not divisible by the number of processes ({num_processes})")


def fetch(tree):
  """Bring a (replicated) tree to the host as numpy, working with multi-process arrays too."""
  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(x.addressable_shards[0].data)
    return np.asarray(x)
  return jax.tree.map(one, tree)
