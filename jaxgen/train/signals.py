"""How a training run answers SIGINT and SIGTERM (used by jaxgen.train.trainer).

During the train loop (`SignalFlag`): the first signal saves a checkpoint after the current step and stops
with TrainingInterrupted; a repeated SIGTERM (schedulers and parents repeat it) is ignored; a second SIGINT
stops at once in one line, releasing the workdir lock. In a multi-process job SIGTERM is left to JAX's
preemption service, which makes every process save the same step. Before the loop (`StartupSignals`: lock,
restore, compile) a signal stops with TrainingInterrupted: nothing trained yet, nothing to save.
"""
from __future__ import annotations

import os
import signal
import threading

import jax

from jaxgen.train.logging import log


class TrainingInterrupted(Exception):
  def __init__(self, signum: int, step: int, message: str):
    super().__init__(message)
    self.signum, self.step = signum, step


def _preemption_service() -> bool:
  """Whether this is a multi-process job with JAX's preemption sync service (jax.distributed.initialize
  starts it unless jax_enable_preemption_service is off)."""
  if jax.process_count() == 1:
    return False
  from jax._src import distributed
  return distributed.global_state.preemption_sync_manager is not None


class SignalFlag:
  """Records SIGINT/SIGTERM so the loop can checkpoint and stop between steps.

  One process: Python handlers for both. Several processes: SIGTERM is left to JAX's preemption service, which
  tells every process and agrees on the step they all stop at (`reached`, called once per step), so a signal
  that reaches one process stops them all at the same step; a SIGINT is turned into a SIGTERM to this process,
  to go the same way."""

  def __init__(self):
    self.signum = None
    self._old = {}
    self.coordinated = _preemption_service()

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for s in (signal.SIGINT,) if self.coordinated else (signal.SIGINT, signal.SIGTERM):
        self._old[s] = signal.signal(s, self._handle)
    return self

  def _handle(self, signum, frame):
    if self.coordinated:
      log.warning("received signal %d: asking every process to save a checkpoint and stop", signum)
      os.kill(os.getpid(), signal.SIGTERM)
      return
    if self.signum is not None:
      if signum == signal.SIGTERM:       # schedulers and parents repeat SIGTERM (PDEATHSIG, SLURM's step and batch
        log.warning("received signal %d again: still saving a checkpoint after this step", signum)   # signals)
        return
      _exit_now(signum, self.signum)     # a second Ctrl-C: stop at once, without a traceback
    self.signum = signum
    log.warning("received signal %d: saving a checkpoint after this step", signum)

  def reached(self, step: int) -> None:
    """In a multi-process job: record SIGTERM when every process has reached the agreed stopping step."""
    if self.coordinated and self.signum is None:
      from jax.experimental import multihost_utils
      if multihost_utils.reached_preemption_sync_point(step):
        self.signum = signal.SIGTERM
        log.warning("preemption: every process saves a checkpoint at step %d and stops", step)

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)


def _exit_now(signum: int, first: int) -> None:
  """A second SIGINT (a person asking to stop now) while the first signal's checkpoint is pending: one line,
  release the workdir lock,
  exit 128 + signum at once. Orbax writes a checkpoint under a temporary name and renames it when complete, so
  the last complete checkpoint is intact and a rerun resumes from it."""
  import sys
  from jaxgen.train.lock import release_all
  print(f"error: second signal {signum} after signal {first}: stopping now without saving; the last complete "
        f"checkpoint is intact: rerun the same command to resume from it", file=sys.stderr, flush=True)
  release_all()
  os._exit(128 + signum)


class StartupSignals:
  """SIGINT/SIGTERM before the train loop (restoring, compiling): nothing trained yet, so stop with
  TrainingInterrupted (the lock is released on the way out) instead of the default action's abrupt death,
  which leaves the lock behind. The loop's SignalFlag takes over the signals while it runs. One process only:
  a multi-process job leaves SIGTERM to JAX's preemption service."""

  def __init__(self):
    self._old = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread() and not _preemption_service():
      for s in (signal.SIGINT, signal.SIGTERM):
        self._old[s] = signal.signal(s, self._handle)
    return self

  @staticmethod
  def _handle(signum, frame):
    raise TrainingInterrupted(signum, None, f"interrupted by signal {signum} during start-up, before the first "
                              f"step of this run: nothing to save; rerun the same command to resume")

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)
