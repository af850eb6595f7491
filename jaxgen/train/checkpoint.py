"""Orbax checkpoints under `workdir/checkpoints`: async saves, the latest N kept, auto-resume.

`restore_latest` falls back over damaged checkpoints: when the latest cannot be restored (files truncated by a
failing disk or an interrupted copy), it warns in one line naming the checkpoint and the error, moves it aside
to `checkpoints/damaged/` (the user's data is never deleted) and tries the one before; when none can be restored
it raises CheckpointUnavailable naming the directory.

A checkpoint whose metadata reads back but whose arrays have other shapes than the state it is restored into is
not damaged: the config changed (a new model width), not the files. `mismatch` names the fields that differ and
`restore_latest` raises CheckpointMismatch without moving anything (docs/reliability.md).
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


class CheckpointWriteError(OSError):
  """A checkpoint could not be written (disk full, quota, permissions): training stops at that save."""


def free_bytes(directory: str) -> int:
  import shutil
  while directory and not os.path.exists(directory):
    directory = os.path.dirname(directory)
  try:
    return shutil.disk_usage(directory or ".").free
  except OSError:
    return -1


def _first_line(e: BaseException) -> str:
  return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


class CheckpointMismatch(ValueError):
  """An intact checkpoint whose arrays have other shapes than the state of this config: the config changed."""


def _key_name(key) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def leaf_shapes(tree) -> dict:
  """{'params.conv.kernel': shape} of a state, an abstract state or Orbax's metadata tree (the same names)."""
  return {".".join(_key_name(k) for k in path): tuple(getattr(leaf, "shape", ()) or ())
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def shape_differences(saved: dict, wanted: dict) -> dict:
  """{field: (saved shape, wanted shape)}; a field on one side only shows '<absent>' on the other."""
  out = {k: (saved.get(k, "<absent>"), wanted.get(k, "<absent>")) for k in sorted(set(saved) | set(wanted))
         if saved.get(k) != wanted.get(k)}
  return out


def describe_mismatch(directory: str, step: int, diffs: dict, limit: int = 3) -> str:
  """One line: the first `limit` differing fields, the parameters' own before their EMA and optimizer copies."""
  order = sorted(diffs, key=lambda k: (not k.startswith("params."), k))
  shown = ", ".join(f"{k} {diffs[k][0]} -> {diffs[k][1]}" for k in order[:limit])
  more = f" and {len(diffs) - limit} more" if len(diffs) > limit else ""
  return (f"checkpoint {step} in {directory} is intact but holds other shapes than this config's state: {shown}"
          f"{more} (saved -> this config). The config changed (a model size?): rerun with the run's own config, "
          f"or use another --workdir; nothing was moved")


class Checkpointer:
  """A thin wrapper over `ocp.CheckpointManager` for a single TrainState pytree.

  Orbax coordinates the processes of a multi-host job itself: every process calls save/restore.
  """

  def __init__(self, directory: str, *, max_to_keep: int = 3, async_save: bool = True):
    self.directory = os.path.abspath(directory)
    self._options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 enable_async_checkpointing=async_save)
    self._manager = ocp.CheckpointManager(self.directory, options=self._options,
                                          item_handlers=ocp.StandardCheckpointHandler())   # metadata readable

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self):
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any) -> bool:
    """Start saving `state` as `step` (returns at once when async, but waits for the write when the disk has
    less than 4x the state's size free, so that a failing write stops training at this save); a step that
    exists is skipped. CheckpointWriteError (one line: the path, the free space) when it cannot be written."""
    if step in self._manager.all_steps():
      return False
    need = self._size_on_disk() or sum(getattr(x, "nbytes", 0) for x in jax.tree.leaves(state))
    free = free_bytes(self.directory)
    if 0 <= free < need + need // 10 + (16 << 10):   # the previous checkpoint's size: the write would fail midway
      raise self._write_error(step, f"about {need / 2**20:.2f} MiB needed, as checkpoint "
                                    f"{self.latest_step()} took" if self.latest_step() is not None else
                              f"about {need / 2**20:.2f} MiB needed")
    try:
      started = self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
      if 0 <= free < 4 * need + (1 << 20):
        self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except  (ENOSPC from TensorStore, Orbax or the OS)
      raise self._write_error(step, f"{type(e).__name__}: {_first_line(e)}") from e
    return started

  def _size_on_disk(self) -> int:
    """Bytes of the latest checkpoint's files (0 when there is none): what the next one will take."""
    step = self.latest_step()
    if step is None:
      return 0
    total = 0
    for d, _, files in os.walk(os.path.join(self.directory, str(step))):
      for f in files:
        try:
          total += os.stat(os.path.join(d, f)).st_blocks * 512      # what the files occupy, as du counts
        except OSError:
          pass
    return total

  def _write_error(self, step, why: str) -> CheckpointWriteError:
    free = free_bytes(self.directory)
    kept = [s for s in self._manager.all_steps() if s != step]
    previous = (f"checkpoint {max(kept)} is intact: rerun the same command to resume from it" if kept else
                "no earlier checkpoint exists")
    return CheckpointWriteError(
        f"cannot write checkpoint {step} to {self.directory} ({why}); {free / 2**20:.2f} MiB free there; training "
        f"stopped. Free space (or move the workdir); {previous}")

  def restore(self, target: Any, step: Optional[int] = None) -> Any:
    """Restore into the structure, dtypes and shardings of `target` (a state or its abstract version)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    logging.info("restoring checkpoint %d from %s", step, self.directory)
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def mismatch(self, target: Any, step: int) -> Optional[dict]:
    """{field: (saved shape, target shape)} when checkpoint `step`'s metadata reads back and its shapes differ
    from `target`'s; {} when they agree; None when the metadata cannot be read (a damaged checkpoint)."""
    try:
      saved = leaf_shapes(self._manager.item_metadata(step).tree)
    except Exception:  # pylint: disable=broad-except  (missing or unreadable metadata: damaged)
      return None
    if not saved:
      return None
    return shape_differences(saved, leaf_shapes(target))

  def check_shapes(self, target: Any) -> None:
    """Raise CheckpointMismatch when the newest checkpoint whose metadata reads back has other shapes than
    `target` (damaged ones are skipped: restore_latest deals with them)."""
    for step in sorted(self.all_steps(), reverse=True):
      diffs = self.mismatch(target, step)
      if diffs is None:
        continue
      if diffs:
        raise CheckpointMismatch(describe_mismatch(self.directory, step, diffs))
      return

  def restore_latest(self, target: Any, *, move_aside: bool = True, log=None):
    """(step, state) from the newest checkpoint that can be restored; damaged ones are moved aside, an intact
    one with other shapes than `target` raises CheckpointMismatch. move_aside=False (the read-only commands:
    sample, evaluate) skips damaged ones without moving them; log: where the warning goes (default stdout)."""
    log = log or (lambda m: print(m, flush=True))
    tried = []
    for step in sorted(self.all_steps(), reverse=True):
      try:
        return step, self.restore(target, step)
      except Exception as e:  # pylint: disable=broad-except  (TensorStore, Orbax and OS errors alike)
        diffs = self.mismatch(target, step)
        if diffs:
          raise CheckpointMismatch(describe_mismatch(self.directory, step, diffs)) from e
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        where = f"moved it to {self._move_aside(step)}" if move_aside else "left it in place"
        log(f"warning: checkpoint {step} in {self.directory} is damaged and cannot be restored "
            f"({type(e).__name__}: {first_line}); {where}; trying the previous one")
        tried.append(step)
    raise CheckpointUnavailable(
        f"no checkpoint in {self.directory} can be restored (tried steps {tried}; the damaged ones are in "
        f"{os.path.join(self.directory, 'damaged') if move_aside else self.directory}); remove them to start "
        f"afresh, or restore a copy")

  def damaged(self) -> list:
    """The names under checkpoints/damaged/ (checkpoints moved aside by restore_latest)."""
    path = os.path.join(self.directory, "damaged")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []

  def _move_aside(self, step: int, kind: str = "damaged") -> str:
    """Move checkpoint `step` to checkpoints/<kind>/<step>-<time> (kind: 'damaged' or 'diverged')."""
    damaged = os.path.join(self.directory, kind)
    os.makedirs(damaged, exist_ok=True)
    dst = os.path.join(damaged, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    if jax.process_index() == 0:
      os.rename(os.path.join(self.directory, str(step)), dst)
    self._manager.reload()
    return dst

  def move_diverged(self, after: Optional[int]) -> list:
    """Move the checkpoints after step `after` (all when None) to checkpoints/diverged/; their steps."""
    moved = [s for s in sorted(self.all_steps()) if after is None or s > after]
    for step in moved:
      self._move_aside(step, "diverged")
    return moved

  def wait(self) -> None:
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except  (an asynchronous write that failed)
      raise self._write_error(self._manager.latest_step(), f"{type(e).__name__}: {_first_line(e)}") from e

  def close(self) -> None:
    try:
      self.wait()
    finally:
      try:
        self._manager.close()
      except Exception:  # pylint: disable=broad-except  (the write's error is the one reported)
        pass
