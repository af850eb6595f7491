"""The sweep runner end to end (`python -m jaxgen.sweep`, the GAN toy smoke model: a process start and a
compile in seconds): two workers, Ctrl-C of the runner, kill -9 of the runner, a failing point, and reruns that
finish only what is missing."""
import json
import os
import signal
import subprocess
import sys
import time

from jaxgen.sweep import report, runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 3000
SETS = [f"--set=num_train_steps={STEPS}", "--set=log_every=50", "--set=checkpoint_every=1000", "--set=sample_every=0",
        "--set=eval_every=0", "--set=tensorboard=False"]
GOOD, BAD = ("ema_decay=0.9,seed=0", "ema_decay=0.99,seed=0"), "ema_decay=2.0,seed=0"


def _command(root):
  return [sys.executable, "-m", "jaxgen.sweep", "--config=experiments/gan_toy2d.py:smoke",
          "--grid=optim.ema_decay=0.9,0.99,2.0", f"--root={root}", "--workers=2", "--status_every=0", *SETS]


def _env():
  return dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")


def _logged(root, name):
  path = os.path.join(root, name, "sweep.log")
  return open(path).read().count(f"/{STEPS} |") if os.path.exists(path) else 0


def _wait(predicate, timeout, what):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if predicate():
      return
    time.sleep(0.05)
  raise AssertionError(f"timed out waiting for {what}")


def _hold_until_all_log(root, before, timeout, what):
  """Wait until every good point has logged past `before`, pausing (SIGSTOP) each that gets there first until
  the others catch up: on a loaded machine one point's start-up can outlast the other's whole run."""
  held = {}
  try:
    def caught_up():
      for n in GOOD:
        if n not in held and _logged(root, n) > before[n]:
          record = runner._read_json(os.path.join(root, n, runner.STATUS_FILE)) or {}
          if record.get("status") == "running" and record.get("pid"):
            held[n] = int(record["pid"])
            os.kill(held[n], signal.SIGSTOP)
      return len(held) == len(GOOD)
    _wait(caught_up, timeout, what)
  finally:
    for pid in held.values():
      try:
        os.kill(pid, signal.SIGCONT)
      except ProcessLookupError:
        pass


def _status(root, name):
  return runner.point_status(os.path.join(root, name))


def test_sweep_survives_ctrl_c_and_kill_9_and_reports_a_failed_point(tmp_path):
  root = str(tmp_path / "sweep")
  env = _env()

  # 1. Ctrl-C once both points are training: each saves a checkpoint and stops; the third never started.
  proc = subprocess.Popen(_command(root), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  try:
    _hold_until_all_log(root, {n: 0 for n in GOOD}, 180, "both points to log a step")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
  finally:
    proc.kill()
  assert proc.returncode == 130, out
  assert "stopping the running points" in out and out.count("[stopped]") == 2, out
  stopped_at = {n: runner.latest_checkpoint(os.path.join(root, n)) for n in GOOD}
  assert all(s is not None and 50 <= s < STEPS for s in stopped_at.values()), stopped_at
  assert [_status(root, n) for n in GOOD] == ["interrupted", "interrupted"] and _status(root, BAD) == "new"

  # 2. kill -9 of the runner itself: its points still get SIGTERM (the parent-death signal) and save.
  proc = subprocess.Popen(_command(root), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  try:
    before = {n: _logged(root, n) for n in GOOD}
    _hold_until_all_log(root, before, 180, "both points to resume and log")
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
  finally:
    proc.kill()
  assert out.count("(resuming from step") == 2, out
  locks = [os.path.join(root, n, ".lock") for n in GOOD]
  _wait(lambda: not any(os.path.exists(l) for l in locks), 120, "the orphaned points to save and exit")
  second = {n: runner.latest_checkpoint(os.path.join(root, n)) for n in GOOD}
  assert all(second[n] > stopped_at[n] for n in GOOD), (stopped_at, second)
  assert [_status(root, n) for n in GOOD] == ["interrupted", "interrupted"]     # said 'running': its runner is dead

  # 3. The rerun finishes the two and reports the failing point with its log, without stopping the others.
  done = subprocess.run(_command(root), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  out = done.stdout
  assert done.returncode == 1, out + done.stderr
  assert f"[failed] {BAD}: exit code 2" in out and "optim.ema_decay=2.0 must lie in [0, 1]" in out, out
  assert all(f"[done] {n}" in out for n in GOOD) and "2/3 done, 1 failed" in out, out
  assert [_status(root, n) for n in GOOD] == ["done", "done"] and _status(root, BAD) == "failed"
  for n in GOOD:
    rows = [json.loads(l) for l in open(os.path.join(root, n, "metrics.jsonl"))]
    steps = [r["step"] for r in rows if "train/d_loss" in r]
    # every log step once across the restarts, plus the steps the signals stopped it at (logged since issue 23)
    assert steps == sorted(set(steps)) and set(range(50, STEPS + 1, 50)) <= set(steps), (n, steps)
    assert runner.latest_checkpoint(os.path.join(root, n)) == STEPS
    starts = [json.loads(l) for l in open(os.path.join(root, n, "provenance.jsonl"))]
    assert len(starts) == 3 and starts[0]["env"]["JAXGEN_SWEEP_POINT"] == n

  # 4. Once more: the finished points are skipped, the failed one retried.
  again = subprocess.run(_command(root), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert "3 point(s), 2 already done, 1 to run" in again.stdout and "[start] ema_decay=0.9" not in again.stdout

  paths = report.report(root, ["samples/modes_covered"])
  md = open(paths["markdown"]).read()
  assert "| 2.0 | 0/1 |" in md and "seed 0 failed" in md and md.count("| done |") == 4
