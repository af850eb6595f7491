"""The streaming pipeline (data.pipeline='streaming', jaxgen.data.streaming, on Grain): a global order that is a
pure function of (seed, step), sharded by process, the same batches from worker processes, and a run killed
with SIGKILL and rerun that ends bit for bit where an uninterrupted one does."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np
import pytest

from jaxgen.data import streaming
from jaxgen.train.run import load_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def data_config(tmp_path_factory):
  return ml_collections.ConfigDict(dict(name="digits", data_dir=str(tmp_path_factory.mktemp("tfds")), download=True,
                                        random_flip=False, pipeline="streaming"))


def _take(it, n):
  return [next(it) for _ in range(n)]


def test_the_global_order():
  order = streaming.global_order(100, 16, seed=3)       # 6 global batches an epoch, 4 examples dropped
  for epoch in range(2):
    seen = np.concatenate([order[epoch * 6 + k] for k in range(6)])
    assert len(set(seen.tolist())) == 96 and seen.min() >= 0 and seen.max() < 100     # no repeats in an epoch
  assert not np.array_equal(order[0], order[6])                                      # reshuffled each epoch
  halves = [streaming.global_order(100, 16, seed=3, process_index=p, process_count=2)[7] for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves), order[7])
  np.testing.assert_array_equal(streaming.global_order(100, 16, seed=3)[13], order[13])
  assert not np.array_equal(streaming.global_order(100, 16, seed=4)[0], order[6])   # seed 4 is not seed 3 an epoch on
  with pytest.raises(ValueError, match="fewer than one batch"):
    streaming.global_order(10, 16, seed=0)


def test_resume_at_any_step_and_process_shards(data_config):
  # digits' train split has 1497 examples: 23 batches of 64 per epoch; start across the epoch boundary.
  straight = _take(streaming.make_train_iterator(data_config, global_batch_size=64, seed=1, process_index=0,
                                                 process_count=1), 26)
  it = streaming.make_train_iterator(data_config, global_batch_size=64, seed=1, start_step=21, process_index=0,
                                    process_count=1, workers=2)          # read by two Grain worker processes
  resumed = _take(it, 5)
  it.close()
  for a, b in zip(straight[21:], resumed):
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
  assert straight[0]["image"].shape == (64, 8, 8, 1) and straight[0]["image"].dtype == np.uint8
  assert straight[0]["label"].dtype == np.int32
  parts = [next(streaming.make_train_iterator(data_config, global_batch_size=64, seed=1, start_step=22,
                                              process_index=p, process_count=2)) for p in range(2)]
  for k in parts[0]:
    np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), straight[22][k])
  # A flip is a flip of the same example.
  flipped = ml_collections.ConfigDict(dict(data_config.to_dict(), random_flip=True))
  f = next(streaming.make_train_iterator(flipped, global_batch_size=64, seed=1, process_index=0, process_count=1))
  same = np.all(f["image"] == straight[0]["image"], axis=(1, 2, 3))
  mirrored = np.all(f["image"] == straight[0]["image"][:, :, ::-1], axis=(1, 2, 3))
  assert np.all(same | mirrored) and 0 < (~same).sum() < 64


def test_a_bad_pipeline_name_or_worker_count_is_named():
  with pytest.raises(ValueError, match="data.pipeline='stream'; choose one of: memory, streaming"):
    streaming.check_pipeline({"pipeline": "stream"})
  with pytest.raises(ValueError, match="data.workers=-1 must be an int >= 0"):
    streaming.check_pipeline({"pipeline": "streaming", "workers": -1})


def _command(workdir, data_dir):
  return [sys.executable, "-m", "experiments.ddpm_cifar", "--config=experiments/ddpm_cifar.py:smoke",
          f"--workdir={workdir}", "--config.data.pipeline=streaming", f"--config.data.data_dir={data_dir}",
          "--config.num_train_steps=40", "--config.checkpoint_every=10", "--config.log_every=1",
          "--config.sample_every=0", "--config.eval_every=0", "--config.evals=()", "--config.tensorboard=False"]


def test_a_streaming_run_killed_and_rerun_ends_bit_for_bit_like_an_uninterrupted_one(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  data_dir = str(tmp_path / "tfds")
  straight = subprocess.run(_command(tmp_path / "straight", data_dir), cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
  assert straight.returncode == 0, straight.stderr[-3000:]
  workdir = tmp_path / "killed"
  proc = subprocess.Popen(_command(workdir, data_dir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline, killed = time.monotonic() + 300, False
  while time.monotonic() < deadline and proc.poll() is None:
    metrics = workdir / "metrics.jsonl"
    rows = [json.loads(l) for l in open(metrics) if l.endswith("\n")] if metrics.exists() else []
    if rows and rows[-1]["step"] >= 14 and (workdir / "checkpoints" / "10").exists():
      proc.send_signal(signal.SIGKILL)
      proc.wait()
      killed = True
      break
    time.sleep(0.002)
  proc.kill()
  assert killed, "the run finished before it could be killed"
  rerun = subprocess.run(_command(workdir, data_dir), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert rerun.returncode == 0 and "resumed from checkpoint at step" in rerun.stdout, rerun.stderr[-3000:]
  a, b = load_run(str(tmp_path / "straight")).state, load_run(str(workdir)).state
  assert int(a.step) == int(b.step) == 40
  for x, y in zip(jax.tree.leaves((a.params, a.ema_params, a.opt_state)), jax.tree.leaves((b.params, b.ema_params,
                                                                                           b.opt_state))):
    assert np.asarray(x).tobytes() == np.asarray(y).tobytes()
