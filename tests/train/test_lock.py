"""One run per workdir: a second run stops at once naming the holder; a dead holder's lock is taken over."""
import json
import os
import platform
import subprocess
import sys

import pytest

from experiments.ddpm_cifar import get_config
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
