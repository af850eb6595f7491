"""Sharded train state (parallel.strategy='fsdp') on 8 simulated CPU devices: the same parameters as
replicated training (also on a 4x2 ('data', 'model') mesh), about 8x fewer bytes of state per device, and a checkpoint written sharded over 8 devices
restored onto 4 and onto 1."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxgen.train import parallel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _worker(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  out = subprocess.run([sys.executable, os.path.join(HERE, "fsdp_worker.py"), *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  return out


def test_fsdp_matches_replicated_shards_the_state_and_restores_onto_fewer_devices(tmp_path):
  root = str(tmp_path)
  out = _worker("train", "--devices", "8", "--root", root, "--out", str(tmp_path / "train.json"))
  assert "(fsdp, mesh {'data': 8})" in out.stdout
  r = json.load(open(tmp_path / "train.json"))
  assert r["step"] == 4
  assert r["max_abs_diff"] <= 1e-6 * max(1.0, r["max_abs_param"]), r
  assert r["max_abs_diff_2d"] <= 1e-6 * max(1.0, r["max_abs_param"]), r          # the ('data', 'model') mesh
  assert "'data': 4" in r["mesh_2d"] and "'model': 2" in r["mesh_2d"]
  (rep_local, rep_total), (fsdp_local, fsdp_total) = r["bytes"]["replicated"], r["bytes"]["fsdp"]
  assert rep_local == rep_total == fsdp_total
  assert 7.0 < rep_local / fsdp_local <= 8.0, r["bytes"]        # the small leaves (biases, input layer) replicate
  sharded = [k for k, s in r["specs"].items() if "data" in s]
  assert sharded and all(r["specs"][k] == "P()" for k in r["specs"] if "bias" in k)

  saved = np.load(tmp_path / "fsdp_params.npz")
  for devices in (4, 1):
    path = str(tmp_path / f"restored_{devices}.npz")
    _worker("restore", "--devices", str(devices), "--root", root, "--out", path)
    restored = np.load(path)
    assert int(restored["__step"]) == 4 and int(restored["__devices"]) == devices
    assert ("'data'" in str(restored["__spec"])) == (devices > 1), str(restored["__spec"])
    assert set(saved.files) == {k for k in restored.files if not k.startswith("__")}
    for k in saved.files:
      np.testing.assert_array_equal(restored[k], saved[k], err_msg=k)


class _Mesh:
  """What leaf_spec reads of a mesh."""

  def __init__(self, shape):
    self.shape = shape
    self.axis_names = tuple(shape)
    self.devices = np.zeros(tuple(shape.values()))


def test_the_sharding_rule():
  m8 = _Mesh({"data": 8})
  assert parallel.leaf_spec((3, 3, 128, 256), m8, 2 ** 14) == P(None, None, None, "data")
  assert parallel.leaf_spec((256, 100), m8, 2 ** 14) == P("data", None)
  assert parallel.leaf_spec((100, 7), m8, 0) == P()               # no axis divides: replicated
  assert parallel.leaf_spec((256,), m8, 2 ** 14) == P()            # small: replicated
  assert parallel.leaf_spec((), m8, 0) == P()
  m42 = _Mesh({"data": 4, "model": 2})
  assert parallel.leaf_spec((512, 64), m42, 0) == P(("data", "model"), None)
  assert parallel.leaf_spec((12, 20), m42, 0) == P(None, "data")   # 8 divides neither; 4 divides 20 and 12
  with pytest.raises(ValueError, match="parallel.strategy='zero'"):
    parallel.check_parallel_config({"parallel": {"strategy": "zero"}}, 8)
  with pytest.raises(ValueError, match="parallel.model_axis=3 must be a positive divisor"):
    parallel.check_parallel_config({"parallel": {"model_axis": 3}}, 8)
