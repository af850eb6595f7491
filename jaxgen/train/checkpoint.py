"""Orbax checkpoints under `workdir/checkpoints`: async saves, the latest N kept, auto-resume.

`restore_latest` falls back over damaged checkpoints: when the latest cannot be restored (files truncated by a
failing disk or an interrupted copy), it warns in one line naming the checkpoint and the error, moves it aside
to `checkpoints/damaged/` (the user's data is never deleted) and tries the one before; when none can be restored
it raises CheckpointUnavailable naming the directory.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp


class CheckpointUnavailable(RuntimeError):
  """No checkpoint of the workdir can be restored."""


class Checkpointer:
  """A thin wrapper over `ocp.CheckpointManager` for a single TrainState pytree.

  Orbax coordinates the processes of a multi-host job itself: every process calls save/restore.
  """

  def __init__(self, directory: str, *, max_to_keep: int = 3, async_save: bool = True):
    self.directory = os.path.abspath(directory)
    self._options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 enable_async_checkpointing=async_save)
    self._manager = ocp.CheckpointManager(self.directory, options=self._options)

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self):
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any) -> bool:
    """Start saving `state` as `step` (returns at once when async); a step that exists is skipped."""
    if step in self._manager.all_steps():
      return False
    return self._manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def restore(self, target: Any, step: Optional[int] = None) -> Any:
    """Restore into the structure, dtypes and shardings of `target` (a state or its abstract version)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    logging.info("restoring checkpoint %d from %s", step, self.directory)
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def restore_latest(self, target: Any):
    """(step, state) from the newest checkpoint that can be restored; damaged ones are moved aside."""
    tried = []
    for step in sorted(self.all_steps(), reverse=True):
      try:
        return step, self.restore(target, step)
      except Exception as e:  # pylint: disable=broad-except  (TensorStore, Orbax and OS errors alike)
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        moved = self._move_aside(step)
        print(f"warning: checkpoint {step} in {self.directory} cannot be restored ({type(e).__name__}: "
              f"{first_line}); moved it to {moved}; trying the previous one", flush=True)
        tried.append(step)
    raise CheckpointUnavailable(
        f"no checkpoint in {self.directory} can be restored (tried steps {tried}; the damaged ones are in "
        f"{os.path.join(self.directory, 'damaged')}); remove them to start afresh, or restore a copy")

  def _move_aside(self, step: int) -> str:
    damaged = os.path.join(self.directory, "damaged")
    os.makedirs(damaged, exist_ok=True)
    dst = os.path.join(damaged, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    if jax.process_index() == 0:
      os.rename(os.path.join(self.directory, str(step)), dst)
    self._manager.reload()
    return dst

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
