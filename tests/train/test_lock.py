"""One run per workdir: a second run stops at once naming the holder; a dead holder's lock is taken over."""
import json
import os
import platform
import subprocess
import sys

import pytest

from experiments.ddpm_toy2d import get_config   # the MLP denoiser: what is under test is the lock, not the model
from jaxgen.data import train_data_fn
from jaxgen.diffusion.build import make_ddpm
from jaxgen.train import trainer
from jaxgen.train.lock import LOCK_NAME, WorkdirLock, WorkdirLocked


def _write_lock(workdir, pid, host=None):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, LOCK_NAME), "w") as f:
    json.dump({"host": host or platform.node(), "pid": pid, "start_time": "2026-01-01 00:00:00"}, f)


def test_a_live_holder_stops_a_second_run_before_anything_starts(tmp_path):
  holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    _write_lock(tmp_path, holder.pid)
    config = get_config("smoke")
    with pytest.raises(WorkdirLocked, match=f"in use by another run: PID {holder.pid} on this host"):
      trainer.train(make_ddpm(config), config, str(tmp_path), lambda step: iter(()))   # no data read, no init
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "checkpoints").exists()
  finally:
    holder.kill()


def test_a_dead_holders_lock_is_taken_over_and_released(tmp_path, capsys):
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  _write_lock(tmp_path, dead.pid)
  lock = WorkdirLock(str(tmp_path)).acquire()
  assert "taking over the lock of a dead run" in capsys.readouterr().out
  assert json.load(open(tmp_path / LOCK_NAME))["pid"] == os.getpid()
  with pytest.raises(WorkdirLocked, match="PID"):
    WorkdirLock(str(tmp_path)).acquire()              # held by this (live) process now
  lock.release()
  assert not (tmp_path / LOCK_NAME).exists()
  _write_lock(tmp_path, 1, host="some-other-host")
  with pytest.raises(WorkdirLocked, match="on host some-other-host"):
    WorkdirLock(str(tmp_path)).acquire()


def test_a_finished_run_leaves_no_lock(tmp_path):
  config = get_config("smoke")
  config.update(num_train_steps=2, log_every=2, checkpoint_every=2, sample_every=0, tensorboard=False, evals=())
  trainer.train(make_ddpm(config), config, str(tmp_path), train_data_fn(config))
  assert not (tmp_path / LOCK_NAME).exists()


def _holder(workdir, **fields):
  os.makedirs(workdir, exist_ok=True)
  record = {"host": "node-a", "pid": 4242, "start_time": "2026-01-01 00:00:00"}
  record.update(fields)
  with open(os.path.join(workdir, LOCK_NAME), "w") as f:
    json.dump(record, f)


def test_a_requeued_slurm_task_takes_over_its_own_attempts_lock(tmp_path, monkeypatch, capsys, caplog):
  import time
  for k in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT"):
    monkeypatch.delenv(k, raising=False)
  monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "777")
  monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
  monkeypatch.setenv("SLURM_JOB_ID", "781")              # a requeued attempt may get a new job id
  fresh = time.time() + 600
  _holder(tmp_path, slurm={"SLURM_ARRAY_JOB_ID": "777", "SLURM_ARRAY_TASK_ID": "4", "SLURM_JOB_ID": "782"},
          lease_until=fresh)
  with pytest.raises(WorkdirLocked, match="on host node-a.*lease expires"):   # another task of the array
    WorkdirLock(str(tmp_path)).acquire()
  _holder(tmp_path, slurm={"SLURM_ARRAY_JOB_ID": "777", "SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "780"},
          lease_until=fresh)
  lock = WorkdirLock(str(tmp_path)).acquire()         # its own earlier attempt, hard-killed on node-a
  out = capsys.readouterr()
  said = (out.out + out.err + caplog.text).count("taking over the lock")
  assert said == 1 and "earlier attempt of this SLURM job 777_3" in out.out, (out, caplog.text)
  record = json.load(open(tmp_path / LOCK_NAME))
  assert record["slurm"]["SLURM_ARRAY_TASK_ID"] == "3" and record["lease_until"] > time.time()
  lock.release()
  monkeypatch.delenv("SLURM_ARRAY_JOB_ID")
  monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
  monkeypatch.delenv("SLURM_JOB_ID")
  _holder(tmp_path, lease_until=time.time() - 5)         # another host, lease not renewed: gone
  WorkdirLock(str(tmp_path)).acquire().release()
  assert "lease on host node-a expired" in capsys.readouterr().out


def test_the_lease_is_renewed_while_held(tmp_path):
  import time
  lock = WorkdirLock(str(tmp_path), lease_seconds=0.3).acquire()
  first = json.load(open(tmp_path / LOCK_NAME))["lease_until"]
  time.sleep(0.5)
  assert json.load(open(tmp_path / LOCK_NAME))["lease_until"] > first
  lock.release()
  assert not (tmp_path / LOCK_NAME).exists()


def test_a_zombie_holder_counts_as_dead(tmp_path, capsys):
  zombie = subprocess.Popen([sys.executable, "-c", "pass"])      # exits; not reaped until wait(): defunct
  import time
  deadline = time.monotonic() + 30
  while open(f"/proc/{zombie.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
    assert time.monotonic() < deadline
    time.sleep(0.01)
  os.kill(zombie.pid, 0)                                          # kill(pid, 0) says it is alive
  _write_lock(tmp_path, zombie.pid)
  WorkdirLock(str(tmp_path)).acquire().release()
  assert "taking over the lock of a dead run" in capsys.readouterr().out
  zombie.wait()
