"""One run per workdir: a lock file `workdir/.lock` naming its holder (host, PID, start time).

A second run on the same workdir (a double submit, a requeued job that overlaps the old one) stops at once
with a message naming the holder. A lock left by a process that is no longer alive on this host is taken over
with a warning. A lock held from another host cannot be checked from here: the run stops and says how to
remove it if that run is gone. In a multi-host job only process 0 takes the lock, so the processes of one job
do not lock each other out (the trainer broadcasts process 0's result to the others).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import time
from typing import Optional

LOCK_NAME = ".lock"
log = logging.getLogger("jaxgen")


_HELD = set()      # the locks this process holds, for release_all


def release_all() -> None:
  """Release every lock this process holds (before an immediate exit: a second Ctrl-C)."""
  for lock in list(_HELD):
    lock.release()


class WorkdirLocked(RuntimeError):
  """Another live run holds the workdir."""


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


class WorkdirLock:
  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_NAME)
    self.held = False

  def holder(self) -> Optional[dict]:
    try:
      with open(self.path) as f:
        return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
      return None

  def acquire(self) -> "WorkdirLock":
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    me = {"host": platform.node(), "pid": os.getpid(), "start_time": time.strftime("%Y-%m-%d %H:%M:%S"),
          "start_unix": time.time()}
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        other = self.holder()
        if other is None:                      # half-written or unreadable: a crashed writer; retry once
          self._remove_stale(other)
          continue
        if other.get("host") == me["host"] and not _alive(int(other.get("pid", -1))):
          log.warning("workdir lock %s was held by PID %s (started %s), which is no longer running; taking it over",
                      self.path, other.get("pid"), other.get("start_time"))
          print(f"warning: taking over the lock of a dead run (PID {other.get('pid')}, started "
                f"{other.get('start_time')}) in {self.path}", flush=True)
          self._remove_stale(other)
          continue
        where = "this host" if other.get("host") == me["host"] else f"host {other.get('host')}"
        raise WorkdirLocked(
            f"workdir {os.path.dirname(self.path)} is in use by another run: PID {other.get('pid')} on {where}, "
            f"started {other.get('start_time')} (lock file {self.path}; if that run is gone, delete the file)")
      with os.fdopen(fd, "w") as f:
        json.dump(me, f)
      self.held = True
      _HELD.add(self)
      return self
    raise WorkdirLocked(f"could not take the workdir lock {self.path}")

  def _remove_stale(self, other):
    try:
      os.remove(self.path)
    except FileNotFoundError:
      pass

  def release(self) -> None:
    if self.held:
      other = self.holder()
      if other is not None and other.get("pid") == os.getpid():
        os.remove(self.path)
      self.held = False
      _HELD.discard(self)
