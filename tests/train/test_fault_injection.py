"""Fault injection: a run killed with SIGKILL at several moments chosen by a seed (JAXGEN_FAULT_SEED, default 11:
during start-up, i.e. restore and compile, in the middle of an asynchronous checkpoint write, and at a random
step, in a random order), and rerun with the same command each time, ends with the parameters, EMA and optimizer
state of an uninterrupted run, bit for bit, and with every step logged once.

The run is the real command line (`python -m experiments.flow_toy2d`, the smoke model: a process start and a
compile in seconds), so what is under test is what a user or a cluster scheduler does to it."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from jaxgen.train.run import load_run
from jaxgen.train.runtime import STARTUP_NOISE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS, EVERY = 48, 4
FLAGS = [f"--config.num_train_steps={STEPS}", f"--config.checkpoint_every={EVERY}", "--config.keep_checkpoints=2",
         "--config.log_every=1", "--config.sample_every=0", "--config.eval_every=0", "--config.tensorboard=False"]


def _command(workdir):
  return [sys.executable, "-m", "experiments.flow_toy2d", "--config=experiments/flow_toy2d.py:smoke",
          f"--workdir={workdir}", *FLAGS]


def _env(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  # Every restart compiles the same step: the persistent cache keeps the test short (and is what a cluster
  # job that is requeued would use).
  env.update(JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  return env


def _logged_steps(workdir):
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.endswith("\n")]
  return [row["step"] for row in rows if "train/loss" in row]


def _saving(workdir):
  """True while Orbax is writing a checkpoint (its temporary directory exists)."""
  directory = os.path.join(workdir, "checkpoints")
  try:
    return any("tmp" in name for name in os.listdir(directory))
  except FileNotFoundError:
    return False


def _kill_when(proc, ready, timeout=120.0):
  """SIGKILL `proc` as soon as `ready()` holds; returns False if the run finished first."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if proc.poll() is not None:
      return False
    if ready():
      proc.send_signal(signal.SIGKILL)
      proc.wait()
      return True
    time.sleep(0.0005)
  proc.kill()
  raise AssertionError("the run neither reached the kill point nor finished")


def _lock_pid(workdir):
  try:
    with open(os.path.join(workdir, ".lock")) as f:
      return json.load(f).get("pid")
  except (OSError, ValueError):
    return None


def _final_state(workdir):
  state = load_run(workdir).state
  assert int(state.step) == STEPS
  return jax.tree.leaves((state.params, state.ema_params, state.opt_state))


def test_kill_9_at_random_moments_resumes_bit_for_bit(tmp_path):
  env = _env(tmp_path)
  straight = str(tmp_path / "straight")
  # The uninterrupted run, with -v and TensorBoard (which loads TensorFlow): the start-up notices that a normal
  # run cuts (see test_ddpm_experiment.py) are printed again.
  verbose_env = {k: v for k, v in env.items() if k != "TF_CPP_MIN_LOG_LEVEL"}    # as a user's shell has it
  proc = subprocess.run(_command(straight) + ["-v=0", "--config.tensorboard=True"], cwd=ROOT, env=verbose_env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Whether TensorFlow prints start-up notices at all depends on the CPU (Intel: oneDNN's; this AMD machine's TF
  # prints none once JAX has started absl's C++ logging): where it does, -v must not cut them.
  probe = subprocess.run([sys.executable, "-c", "import jax, tensorflow"], env=verbose_env, capture_output=True,
                         text=True, timeout=120)
  if any(n in probe.stderr for n in STARTUP_NOISE):
    assert any(n in proc.stderr for n in STARTUP_NOISE), proc.stderr[:2000]

  workdir = str(tmp_path / "killed")
  seed = int(os.environ.get("JAXGEN_FAULT_SEED", "11"))
  rng = np.random.default_rng(seed)
  kills = [f"seed {seed}"]
  # Kill points, in an order the seed picks: during start-up (the lock is taken, no new step yet: restoring or
  # compiling), during a checkpoint write, at a random logged step (between or around saves) plus a delay.
  points = [(str(what), None) for what in rng.permutation(["during start-up", "during a save", "at a random moment"])]
  for what, ready in points:
    proc = subprocess.Popen(_command(workdir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if what == "during a save":
      ready = lambda: _saving(workdir)   # noqa: E731
    elif what == "during start-up":
      before = max(_logged_steps(workdir) + [0])
      ready = lambda proc=proc, before=before: (_lock_pid(workdir) == proc.pid and   # noqa: E731
                                                max(_logged_steps(workdir) + [0]) == before)
    else:
      start = max(_logged_steps(workdir) + [0])
      target = int(rng.integers(start + 1, min(start + 16, STEPS - 2)))
      extra = float(rng.uniform(0.0, 0.05))
      reached = lambda target=target: max(_logged_steps(workdir) + [0]) >= target
      delayed = {"t": None}

      def ready(reached=reached, extra=extra, delayed=delayed):
        if delayed["t"] is None and reached():
          delayed["t"] = time.monotonic() + extra
        return delayed["t"] is not None and time.monotonic() >= delayed["t"]
      what = f"{what} (after step {target} + {extra * 1000:.0f} ms)"
    assert _kill_when(proc, ready), f"the run finished before the kill {what}"
    ckpts = os.path.join(workdir, "checkpoints")
    kills.append((what, max(_logged_steps(workdir) + [0]), sorted(os.listdir(ckpts)) if os.path.isdir(ckpts) else []))

  final = subprocess.run(_command(workdir), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert final.returncode == 0, final.stderr[-3000:]
  assert "lock" in final.stderr.lower() or "lock" in final.stdout.lower(), "the dead run's lock was not taken over"
  assert _logged_steps(workdir) == list(range(1, STEPS + 1)), (kills, _logged_steps(workdir))
  for a, b in zip(_final_state(straight), _final_state(workdir)):
    assert a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b)), kills
