"""Run a sweep: one process per point, `--workers` at a time, each pinned to its share of the CPU cores (and of
the GPUs, when there are any); a rerun of the same command skips finished points and resumes the others from
their checkpoints (the trainer's auto-resume).

Files under --root:
  sweep.json               the sweep (config, fixed overrides, grid, seeds) and its points, with their commands
  <point>/                 the point's workdir (what the experiment writes: config.json, metrics.jsonl, ...)
  <point>/sweep.log        the point's output, appended on every attempt
  <point>/sweep_status.json  running | done | failed | interrupted, with the exit code and times

Stopping: Ctrl-C (or SIGTERM) sends SIGTERM once to every running point, which saves a checkpoint after its
current step and exits; the runner waits for them (a second Ctrl-C kills them at once). If the runner itself is
killed (kill -9), each point still gets SIGTERM (Linux's parent-death signal) and saves. Either way the rerun
resumes them.
"""
from __future__ import annotations

import ctypes
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from jaxgen.sweep.grid import Point, SweepError
from jaxgen.train.logging import format_hms  # numpy only

STATUS_FILE = "sweep_status.json"
LOG_FILE = "sweep.log"
MANIFEST = "sweep.json"
FINISHED = "done"


def _now() -> str:
  return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _write_json(path: str, data) -> None:
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "w") as f:
    json.dump(data, f, indent=2, default=str)
  os.replace(tmp, path)


def _read_json(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (FileNotFoundError, json.JSONDecodeError):
    return None


def _alive(pid) -> bool:
  from jaxgen.train.lock import pid_alive
  try:
    return pid_alive(int(pid))
  except (ValueError, TypeError):            # no PID recorded
    return False


# -- the sweep's definition --------------------------------------------------------------------------------------

class Sweep:
  """What one sweep command line asks for: its points and the command of each."""

  def __init__(self, config_spec: str, grid, sets, seeds, root: str, *, allow_config_change: bool = False):
    from jaxgen.sweep import grid as grid_lib
    path, _, preset = config_spec.partition(":")
    self.config_file = os.path.abspath(path)
    self.preset = preset
    self.config_spec = f"{self.config_file}:{preset}" if preset else self.config_file
    self.config = grid_lib.load_config(config_spec)
    self.grid, self.sets, self.seeds = grid, list(sets), list(seeds)
    grid_lib.check_fields(self.config, self.sets, "--set")
    grid_lib.check_fields(self.config, [(f, v) for f, vals in grid for v in vals], "--grid")
    if "seed" not in self.config:
      raise SweepError(f"{config_spec}: the config has no 'seed' field to vary with --seeds")
    self.root = os.path.abspath(root)
    self.allow_config_change = allow_config_change
    self.points: List[Point] = grid_lib.expand(grid, seeds)
    package_dir = os.path.dirname(self.config_file)
    if os.path.exists(os.path.join(package_dir, "__init__.py")):       # experiments/<name>.py: run it with -m
      self.cwd = os.path.dirname(package_dir)
      self.module = f"{os.path.basename(package_dir)}.{os.path.splitext(os.path.basename(self.config_file))[0]}"
    else:
      self.cwd, self.module = package_dir, os.path.splitext(os.path.basename(self.config_file))[0]

  def workdir(self, point: Point) -> str:
    return os.path.join(self.root, point.name)

  def command(self, point: Point) -> List[str]:
    cmd = [sys.executable, "-m", self.module, f"--config={self.config_spec}"]
    cmd += [f"--config.{f}={v}" for f, v in self.sets]
    cmd += [f"--config.{f}={v}" for f, v in point.values]
    cmd += [f"--config.seed={point.seed}", f"--workdir={self.workdir(point)}"]
    if self.allow_config_change:
      cmd.append("--allow_config_change")
    return cmd

  def value(self, point: Point, field: str):
    """The value `field` has at `point` (its grid value, a --set value, or the preset's)."""
    from jaxgen.sweep.grid import parse_value
    over = dict(self.sets)
    over.update(point.values)
    if field == "seed":
      return point.seed
    if field in over:
      return parse_value(over[field])
    node = self.config
    for part in field.split("."):
      node = node[part]
    return node

  def manifest(self) -> Dict:
    return {"config": self.config_spec, "module": self.module, "cwd": self.cwd,
            "set": [list(s) for s in self.sets], "grid": [[f, list(v)] for f, v in self.grid], "seeds": self.seeds,
            "num_train_steps": {p.name: self.value(p, "num_train_steps") for p in self.points},
            "points": [{"index": p.index, "name": p.name, "values": [list(v) for v in p.values], "seed": p.seed,
                        "group": p.group, "workdir": self.workdir(p), "command": shlex.join(self.command(p))}
                       for p in self.points]}

  def write_manifest(self) -> None:
    """Write root/sweep.json; a root that holds a different sweep (another config or --set) is refused."""
    os.makedirs(self.root, exist_ok=True)
    path = os.path.join(self.root, MANIFEST)
    old = _read_json(path)
    new = self.manifest()
    if old is not None:
      for key, flag in (("config", "--config"), ("set", "--set")):
        if old.get(key) != new[key]:
          raise SweepError(f"{self.root} holds a sweep with {flag} {old.get(key)!r}, not {new[key]!r}; use another "
                           f"--root for a different sweep (points are only added to a sweep by new grid values "
                           f"or seeds)")
      known = {p["name"] for p in new["points"]}
      extra = [p for p in old.get("points", []) if p["name"] not in known]
      if extra:                              # points of an earlier, larger grid stay in the report
        new["points"] += extra
        new["num_train_steps"].update({p["name"]: old["num_train_steps"].get(p["name"]) for p in extra})
      new["created"] = old.get("created", _now())
    else:
      new["created"] = _now()
    new["updated"] = _now()
    _write_json(path, new)


# -- the state of a point --------------------------------------------------------------------------------------

def latest_checkpoint(workdir: str) -> Optional[int]:
  directory = os.path.join(workdir, "checkpoints")
  steps = [int(n) for n in os.listdir(directory) if n.isdigit()] if os.path.isdir(directory) else []
  return max(steps) if steps else None


def point_status(workdir: str) -> str:
  """'done', 'failed', 'interrupted', 'running' (a live runner's point), 'partial' (a checkpoint, no status:
  a run started by hand) or 'new'."""
  status = _read_json(os.path.join(workdir, STATUS_FILE))
  if status is not None:
    s = status.get("status")
    if s == "running" and not _alive(status.get("runner_pid")):
      return "interrupted"                   # its runner was killed: nothing will record how the point ended
    return s
  return "partial" if latest_checkpoint(workdir) is not None else "new"


def log_tail(path: str, lines: int = 20) -> List[str]:
  try:
    with open(path, "rb") as f:
      f.seek(0, os.SEEK_END)
      size = f.tell()
      f.seek(max(0, size - 16384))
      text = f.read().decode("utf-8", errors="replace")
  except FileNotFoundError:
    return []
  return text.splitlines()[-lines:]


def progress_of(log_path: str) -> Optional[str]:
  """'step 300/500' from the latest progress line of a point's log, in its latest attempt only (each attempt
  starts with a '=== ' line): a new attempt that has not logged a step yet has no progress."""
  import re
  for line in reversed(log_tail(log_path, 40)):
    if line.startswith("=== "):
      return None
    m = re.match(r"step (\d+)/(\d+)", line)
    if m:
      return f"step {m.group(1)}/{m.group(2)}"
  return None


# -- resources ---------------------------------------------------------------------------------------------------

def visible_gpus() -> List[str]:
  """The GPUs a child may use: CUDA_VISIBLE_DEVICES when set, else those `nvidia-smi -L` lists (none without it)."""
  env = os.environ.get("CUDA_VISIBLE_DEVICES")
  if env is not None:
    return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
  try:
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
  except (OSError, subprocess.TimeoutExpired):
    return []
  return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def _chunks(items: Sequence, n: int) -> List[list]:
  size, extra = divmod(len(items), n)
  out, start = [], 0
  for i in range(n):
    end = start + size + (1 if i < extra else 0)
    out.append(list(items[start:end]))
    start = end
  return out


def worker_resources(workers: int, cores: Sequence[int], gpus: Sequence[str]) -> List[Dict]:
  """Each worker slot's CPU cores (disjoint when there are at least as many cores as workers) and GPUs."""
  if workers < 1:
    raise SweepError(f"--workers={workers} must be >= 1")
  if gpus and workers > len(gpus):
    raise SweepError(f"--workers={workers} but {len(gpus)} GPU(s) are visible ({','.join(gpus)}): at most one worker "
                     f"per GPU")
  cores = sorted(cores)
  core_sets = _chunks(cores, workers) if workers <= len(cores) else [[cores[i % len(cores)]] for i in range(workers)]
  gpu_sets = _chunks(list(gpus), workers) if gpus else [None] * workers
  return [{"cores": c, "gpus": g} for c, g in zip(core_sets, gpu_sets)]


_PR_SET_PDEATHSIG = 1


def _child_setup(cores: Optional[Sequence[int]], parent: int):
  """Run in the child before exec: pin it to its cores; SIGTERM when the runner dies."""
  def setup():
    if cores:
      os.sched_setaffinity(0, cores)
    try:
      ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):          # not Linux: a killed runner leaves its points running
      pass
    if os.getppid() != parent:                 # the runner died before prctl took effect
      os.kill(os.getpid(), signal.SIGTERM)
  return setup


# -- the runner --------------------------------------------------------------------------------------------------

class _Running:
  def __init__(self, point, proc, log, slot, started):
    self.point, self.proc, self.log, self.slot, self.started = point, proc, log, slot, started
    self.terminated = False


def _wait_for_lock(workdir: str, timeout: float) -> Optional[str]:
  """Wait while a live process holds the point's workdir lock (a point of a killed runner still saving); the
  holder's description if it still holds it after `timeout`."""
  from jaxgen.train.lock import LOCK_NAME
  deadline = time.monotonic() + timeout
  while True:
    holder = _read_json(os.path.join(workdir, LOCK_NAME))
    if holder is None or not _alive(holder.get("pid")):
      return None
    if time.monotonic() > deadline:
      return f"PID {holder.get('pid')} (started {holder.get('start_time')})"
    time.sleep(0.5)


def run(sweep: Sweep, points: Sequence[Point], *, workers: int = 1, pin: bool = True, status_every: float = 60.0,
        grace: float = 600.0, lock_wait: float = 120.0, out=None) -> int:
  """Run `points` (skipping finished ones) `workers` at a time. Returns 0 when all are done, 1 when one failed,
  130 when stopped by a signal (the rerun resumes)."""
  out = out or sys.stdout
  say = lambda msg: print(msg, file=out, flush=True)
  todo = [p for p in points if point_status(sweep.workdir(p)) != FINISHED]
  finished_before = len(points) - len(todo)
  cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
  gpus = visible_gpus()
  slots = worker_resources(min(workers, max(1, len(todo))), cores or [0], gpus)
  if not pin:
    slots = [{"cores": None, "gpus": s["gpus"]} for s in slots]
  share = (f"{len(slots[0]['cores'])} CPU core(s)" if slots[0]["cores"] else "all CPU cores") + \
      (f" and {len(slots[0]['gpus'])} GPU(s)" if gpus else "")
  say(f"sweep {sweep.root}: {len(points)} point(s), {finished_before} already done, {len(todo)} to run, "
      f"{len(slots)} at a time ({share} each)")
  if not todo:
    return 0

  stop = {"count": 0}

  def on_signal(signum, frame):
    stop["count"] += 1
    if stop["count"] == 1:
      say(f"received signal {signum}: stopping the running points (each saves a checkpoint); "
          f"send it again to kill them at once")

  old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
  pending, running, failed, done_now, durations = list(todo), {}, [], 0, []
  stop_time, last_status, t0 = None, time.monotonic(), time.monotonic()
  try:
    while (pending and not stop["count"]) or running:
      free = [i for i in range(len(slots)) if i not in running]
      while free and pending and not stop["count"]:
        point, slot = pending.pop(0), free.pop(0)
        r = _launch(sweep, point, slot, slots[slot], say, lock_wait)
        if isinstance(r, str):
          failed.append(point)
          say(f"[failed] {point.name}: {r}")
          free.insert(0, slot)
        else:
          running[slot] = r
      time.sleep(0.2)
      if stop["count"]:
        if stop_time is None:
          stop_time = time.monotonic()
        for r in running.values():
          if not r.terminated:
            _signal(r.proc, signal.SIGTERM)
            r.terminated = True
        if stop["count"] > 1 or time.monotonic() - stop_time > grace:
          for r in running.values():
            _signal(r.proc, signal.SIGKILL)
      for slot, r in list(running.items()):
        rc = r.proc.poll()
        if rc is None:
          continue
        del running[slot]
        r.log.close()
        elapsed = time.monotonic() - r.started
        status = FINISHED if rc == 0 else ("interrupted" if r.terminated else "failed")
        _set_status(sweep, r.point, status, pid=r.proc.pid, returncode=rc, ended=_now(), seconds=round(elapsed, 1))
        if status == FINISHED:
          done_now += 1
          durations.append(elapsed)
          say(f"[done] {r.point.name} in {format_hms(elapsed)} ({finished_before + done_now}/{len(points)} done)")
        elif status == "interrupted":
          say(f"[stopped] {r.point.name} (exit {rc}); {progress_of(_log_path(sweep, r.point)) or 'no progress yet'}")
        else:
          failed.append(r.point)
          tail = "\n".join("    " + l for l in log_tail(_log_path(sweep, r.point)))
          say(f"[failed] {r.point.name}: exit code {rc}; the last lines of {_log_path(sweep, r.point)}:\n{tail}")
      if status_every and time.monotonic() - last_status >= status_every and running:
        last_status = time.monotonic()
        now = ", ".join(f"{r.point.name} {progress_of(_log_path(sweep, r.point)) or 'starting'}"
                        for r in running.values())
        eta = ""
        if durations:
          left = len(pending) + len(running)
          eta = f"; ETA ~{format_hms(sum(durations) / len(durations) * left / len(slots))}"
        say(f"sweep: {finished_before + done_now}/{len(points)} done, {len(failed)} failed, running: {now}; "
            f"{len(pending)} waiting; elapsed {format_hms(time.monotonic() - t0)}{eta}")
  finally:
    for s, h in old_handlers.items():
      signal.signal(s, h)
    for r in running.values():                     # only on an exception in the loop itself
      _signal(r.proc, signal.SIGTERM)
  total_done = sum(point_status(sweep.workdir(p)) == FINISHED for p in points)
  say(f"sweep {sweep.root}: {total_done}/{len(points)} done, {len(failed)} failed"
      + (f" ({', '.join(p.name for p in failed)})" if failed else "")
      + (f", {len(points) - total_done - len(failed)} not finished" if total_done + len(failed) < len(points) else ""))
  if stop["count"]:
    say("stopped: rerun the same command to resume the unfinished points")
    return 130
  if failed:
    say("rerun the same command to retry the failed points after fixing the cause")
    return 1
  return 0


def _log_path(sweep: Sweep, point: Point) -> str:
  return os.path.join(sweep.workdir(point), LOG_FILE)


def _set_status(sweep: Sweep, point: Point, status: str, **fields) -> None:
  path = os.path.join(sweep.workdir(point), STATUS_FILE)
  record = _read_json(path) or {}
  record.update(fields, status=status, name=point.name)
  _write_json(path, record)


def _signal(proc, signum) -> None:
  try:
    proc.send_signal(signum)
  except ProcessLookupError:
    pass


def _launch(sweep: Sweep, point: Point, slot: int, resources: Dict, say, lock_wait: float):
  """Start one point; a _Running, or a string saying why it could not start."""
  workdir = sweep.workdir(point)
  os.makedirs(workdir, exist_ok=True)
  holder = _wait_for_lock(workdir, lock_wait)
  if holder is not None:
    return f"its workdir is locked by {holder}, which is still running after {lock_wait:.0f} s"
  cmd = sweep.command(point)
  env = dict(os.environ, JAXGEN_SWEEP_POINT=point.name)
  env["PYTHONPATH"] = os.pathsep.join([sweep.cwd] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
  if resources.get("gpus") is not None:
    env["CUDA_VISIBLE_DEVICES"] = ",".join(resources["gpus"])
  log = open(_log_path(sweep, point), "a")
  log.write(f"=== {_now()} sweep runner PID {os.getpid()}, cores {resources.get('cores') or 'all'}: "
            f"{shlex.join(cmd)}\n")
  log.flush()
  previous = _read_json(os.path.join(workdir, STATUS_FILE)) or {}
  proc = subprocess.Popen(cmd, cwd=sweep.cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          start_new_session=True, preexec_fn=_child_setup(resources.get("cores"), os.getpid()))
  _set_status(sweep, point, "running", pid=proc.pid, runner_pid=os.getpid(), started=_now(), command=shlex.join(cmd),
              attempts=int(previous.get("attempts", 0)) + 1, cores=resources.get("cores"),
              gpus=resources.get("gpus"), returncode=None)
  step = latest_checkpoint(workdir)
  say(f"[start] {point.name}" + (f" (resuming from step {step})" if step else "") +
      f" on cores {resources.get('cores') or 'all'}; log {_log_path(sweep, point)}")
  return _Running(point, proc, log, slot, time.monotonic())
