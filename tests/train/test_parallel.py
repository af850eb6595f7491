"""Data parallelism: 8 simulated CPU devices and two processes joined by jax.distributed must give the
same parameters after 3 steps as one device on the whole batch. Each run is a subprocess (XLA's device
count is fixed at start-up, and a missing jax.distributed peer aborts its process), with a timeout so a
hang fails the test instead of stalling the suite."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "dp_worker.py")
TIMEOUT = 240


def _run(args, **kw):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  # The worker sets its own device count; keep the session's other XLA flags (tests/conftest.py).
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
  return subprocess.Popen([sys.executable, WORKER] + args, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)


def _wait(procs):
  outs = []
  try:
    for p in procs:
      out, _ = p.communicate(timeout=TIMEOUT)
      outs.append(out)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]


def _compare(a_path, b_path):
  a, b = np.load(a_path), np.load(b_path)
  assert int(a["step"]) == int(b["step"]) == 3
  np.testing.assert_allclose(a["losses"], b["losses"], rtol=1e-5)
  keys = [k for k in a.files if k.startswith(("p", "e"))]
  assert len(keys) > 20
  worst = max(float(np.abs(a[k] - b[k]).max()) for k in keys)
  assert worst < 1e-5, worst
  # The runs did move the parameters (so equality is not trivial).
  assert any(float(np.abs(a[k]).max()) > 0 for k in keys)


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("single") / "params.npz")
  _wait([_run(["--out", out])])
  return out


def test_eight_devices_match_one(single_device, tmp_path):
  out = str(tmp_path / "params8.npz")
  _wait([_run(["--out", out, "--devices", "8"])])
  _compare(single_device, out)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_match_one(single_device, tmp_path):
  out = str(tmp_path / "params_mp.npz")
  port = str(_free_port())
  procs = [_run(["--out", out, "--devices", "2", "--num_processes", "2", "--process_id", str(i), "--port", port])
           for i in range(2)]
  _wait(procs)
  _compare(single_device, out)
