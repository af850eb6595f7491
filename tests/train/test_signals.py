"""Signals on the real command line: two SIGINTs 0.1 s apart stop the run in a few lines with the last
checkpoint intact and no lock left; SIGTERM during start-up (restore, compile) exits cleanly, lock released."""
import os
import signal
import subprocess
import sys
import time

from jaxgen.train.lock import LOCK_NAME
from jaxgen.train.run import load_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGS = ["--config.log_every=1", "--config.sample_every=0", "--config.eval_every=0", "--config.tensorboard=False",
         "--config.keep_checkpoints=2"]


def _start(workdir, *extra):
  return subprocess.Popen([sys.executable, "-m", "experiments.flow_toy2d", "--config=experiments/flow_toy2d.py:smoke",
                           f"--workdir={workdir}", *FLAGS, *extra], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=ROOT))


def _wait_for(proc, ready, timeout=120):
  deadline = time.monotonic() + timeout
  while not ready():
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert time.monotonic() < deadline, "the run did not reach the point"
    time.sleep(0.002)


def _steps(workdir):
  ckpts = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(ckpts) if n.isdigit()) if os.path.isdir(ckpts) else []


def test_two_sigints_stop_in_a_few_lines_with_the_checkpoint_intact(tmp_path):
  workdir = str(tmp_path / "run")
  proc = _start(workdir, "--config.num_train_steps=200000", "--config.checkpoint_every=20")
  _wait_for(proc, lambda: len(_steps(workdir)) >= 1)
  proc.send_signal(signal.SIGINT)
  time.sleep(0.1)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=60)
  lines = [l for l in err.splitlines() if l.strip()]
  assert proc.returncode in (130, 128 + signal.SIGINT) and len(lines) <= 3, err[-3000:]
  assert "Traceback" not in err and not os.path.exists(os.path.join(workdir, LOCK_NAME)), err[-3000:]
  run = load_run(workdir)
  assert run.step == max(_steps(workdir)) and int(run.state.step) == run.step


def test_sigterm_during_startup_exits_cleanly_and_releases_the_lock(tmp_path):
  workdir = str(tmp_path / "run")
  proc = _start(workdir, "--config.num_train_steps=200000", "--config.checkpoint_every=20")
  _wait_for(proc, lambda: os.path.exists(os.path.join(workdir, LOCK_NAME)))     # the trainer started: restore/compile
  assert not os.path.exists(os.path.join(workdir, "metrics.jsonl"))
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=60)
  lines = [l for l in err.splitlines() if l.strip()]
  assert proc.returncode == 128 + signal.SIGTERM and len(lines) == 1 and "during start-up" in lines[0], err[-3000:]
  assert not os.path.exists(os.path.join(workdir, LOCK_NAME))
