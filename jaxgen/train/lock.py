"""One run per workdir: a lock file `workdir/.lock` naming its holder (host, PID, start time, SLURM job, lease).

A second run on the same workdir (a double submit, a requeued job that overlaps the old one) stops at once
with a message naming the holder. A stale lock is taken over with one warning line. Stale means:
  - on this host: the holder's PID is not running, or is a zombie (defunct: `kill(pid, 0)` succeeds on it);
  - from another host, whose PIDs cannot be checked from here: the holder is an earlier attempt of this same
    SLURM job or array task (same SLURM_JOB_ID, or same SLURM_ARRAY_JOB_ID and SLURM_ARRAY_TASK_ID: SLURM
    runs one attempt at a time, so a requeued task on another node takes over the lock of its own hard-killed
    attempt), or its lease has expired: the holder rewrites `lease_until` every LEASE_SECONDS / 3, so a lease
    LEASE_SECONDS old belongs to a process that is gone (or a host whose clock is that far off).
In a multi-host job only process 0 takes the lock, so the processes of one job do not lock each other out (the
trainer broadcasts process 0's result to the others).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import signal
import threading
import time
from typing import Optional

LOCK_NAME = ".lock"
LEASE_SECONDS = 900.0
SLURM_VARS = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT")
log = logging.getLogger("jaxgen")


_HELD = set()      # the locks this process holds, for release_all


def release_all() -> None:
  """Release every lock this process holds (before an immediate exit: a second Ctrl-C)."""
  for lock in list(_HELD):
    lock.release()


class WorkdirLocked(RuntimeError):
  """Another live run holds the workdir."""


def _zombie(pid: int) -> bool:
  """Whether `pid` is defunct (exited, not yet reaped): /proc/<pid>/stat's state is Z."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] == "Z"
  except (OSError, IndexError):
    return False


def pid_alive(pid: int) -> bool:
  """Whether a process with this PID runs on this host (one we may not signal counts as running; a zombie,
  exited but not reaped, does not)."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return not _zombie(pid)


def slurm_identity(env=None) -> dict:
  """The SLURM job of this process ({} outside SLURM)."""
  env = os.environ if env is None else env
  return {k: env[k] for k in SLURM_VARS if env.get(k)}


def same_slurm_job(a: dict, b: dict) -> bool:
  """Whether two lock holders are attempts of one SLURM job or array task (SLURM runs one at a time)."""
  if not a or not b:
    return False
  if a.get("SLURM_ARRAY_JOB_ID") or b.get("SLURM_ARRAY_JOB_ID"):
    return (a.get("SLURM_ARRAY_JOB_ID"), a.get("SLURM_ARRAY_TASK_ID")) == \
        (b.get("SLURM_ARRAY_JOB_ID"), b.get("SLURM_ARRAY_TASK_ID"))
  return bool(a.get("SLURM_JOB_ID")) and a.get("SLURM_JOB_ID") == b.get("SLURM_JOB_ID")


def stale_reason(other: dict, me: dict, now: Optional[float] = None) -> Optional[str]:
  """Why the lock `other` holds is stale for `me` (a phrase), or None when its holder may be alive."""
  now = time.time() if now is None else now
  pid = other.get("pid")
  if other.get("host") == me["host"]:
    if not pid_alive(int(pid if pid is not None else -1)):
      return f"PID {pid} on this host is no longer running"
    return None
  if same_slurm_job(other.get("slurm") or {}, me.get("slurm") or {}):
    job = other["slurm"].get("SLURM_ARRAY_JOB_ID") or other["slurm"].get("SLURM_JOB_ID")
    task = other["slurm"].get("SLURM_ARRAY_TASK_ID")
    return (f"it was an earlier attempt of this SLURM job {job}{'_' + task if task else ''} on host "
            f"{other.get('host')} (requeued)")
  lease = other.get("lease_until")
  if lease is not None and float(lease) < now:
    return f"its lease on host {other.get('host')} expired {now - float(lease):.0f} s ago"
  return None


class WorkdirLock:
  def __init__(self, workdir: str, lease_seconds: float = LEASE_SECONDS):
    self.path = os.path.join(workdir, LOCK_NAME)
    self.held = False
    self.lease_seconds = lease_seconds
    self._stop = threading.Event()
    self._record = None

  def holder(self) -> Optional[dict]:
    try:
      with open(self.path) as f:
        return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
      return None

  def acquire(self) -> "WorkdirLock":
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    now = time.time()
    me = {"host": platform.node(), "pid": os.getpid(), "start_time": time.strftime("%Y-%m-%d %H:%M:%S"),
          "start_unix": now, "lease_until": now + self.lease_seconds, "slurm": slurm_identity()}
    for _ in range(2):
      if not self._create(me):
        other = self.holder()
        if other is None:                      # half-written or unreadable: a crashed writer; retry once
          self._remove_stale(other)
          continue
        why = stale_reason(other, me)
        if why is not None:
          print(f"warning: taking over the lock of a dead run (PID {other.get('pid')}, started "
                f"{other.get('start_time')}): {why}; lock file {self.path}", flush=True)
          self._remove_stale(other)
          continue
        where = "this host" if other.get("host") == me["host"] else f"host {other.get('host')}"
        lease = (f"; its lease expires at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(other['lease_until']))}"
                 if other.get("host") != me["host"] and other.get("lease_until") else "")
        raise WorkdirLocked(
            f"workdir {os.path.dirname(self.path)} is in use by another run: PID {other.get('pid')} on {where}, "
            f"started {other.get('start_time')}{lease} (lock file {self.path}; if that run is gone, delete the file)")
      self._stop.clear()
      threading.Thread(target=self._renew, name="jaxgen-lock-lease", daemon=True).start()
      return self
    raise WorkdirLocked(f"could not take the workdir lock {self.path}")

  def _create(self, me) -> bool:
    """Create the lock file already holding our whole record: the record is written to a file of our own, which
    is then hard-linked to the lock's name (atomic, and refused when the lock exists). A signal at any moment
    leaves either no lock or a lock whose record names us, which release() removes. (Blocking SIGINT/SIGTERM
    around an O_EXCL create and a write is not enough: Python runs its handlers in the main thread whichever
    thread the kernel delivered the signal to, so with any other thread alive a SIGTERM during start-up could
    land between the two and leave an empty lock behind.) False if the lock exists."""
    tmp = self._own_tmp()
    try:
      with open(tmp, "w") as f:
        json.dump(me, f)
      try:
        os.link(tmp, self.path)
      except FileExistsError:
        return False
      except OSError:                          # a file system without hard links: exclusive create, then write
        return self._create_in_place(me)
      self._mark_held(me)
      return True
    finally:
      try:
        os.remove(tmp)
      except FileNotFoundError:
        pass

  def _mark_held(self, me) -> None:
    self.held = True
    self._record = me
    _HELD.add(self)

  def _own_tmp(self) -> str:
    return f"{self.path}.{os.getpid()}.new"

  def _create_in_place(self, me) -> bool:
    blocked = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        return False
      with os.fdopen(fd, "w") as f:
        json.dump(me, f)
      self._mark_held(me)
      return True
    finally:
      signal.pthread_sigmask(signal.SIG_SETMASK, old)

  def _renew(self) -> None:
    """Extend the lease every lease_seconds / 3 while the lock is held (rewritten whole: tmp file, rename)."""
    while not self._stop.wait(self.lease_seconds / 3):
      if not self.held:
        return
      other = self.holder()
      if other is None or other.get("pid") != os.getpid() or other.get("host") != self._record["host"]:
        return                                  # no longer ours (deleted by hand, taken over): leave it
      record = dict(self._record, lease_until=time.time() + self.lease_seconds)
      tmp = f"{self.path}.{os.getpid()}.tmp"
      try:
        with open(tmp, "w") as f:
          json.dump(record, f)
        os.replace(tmp, self.path)
      except OSError:
        pass

  def _remove_stale(self, other):
    try:
      os.remove(self.path)
    except FileNotFoundError:
      pass

  def release(self) -> None:
    """Remove the lock file if this process wrote it (also when a signal interrupted `acquire` after the file
    was created); another run's lock is never touched."""
    self._stop.set()
    try:
      os.remove(self._own_tmp())               # a record a signal left before it was linked
    except FileNotFoundError:
      pass
    other = self.holder() if os.path.exists(self.path) else None
    if other is not None and other.get("pid") == os.getpid() and other.get("host") == platform.node():
      try:
        os.remove(self.path)
      except FileNotFoundError:
        pass
    self.held = False
    _HELD.discard(self)
