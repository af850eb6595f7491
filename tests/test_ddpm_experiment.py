"""experiments.ddpm_cifar and experiments.sample from the command line, as a user runs them."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, timeout=300, extra_env=None, module="experiments.ddpm_cifar"):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2", **(extra_env or {}))
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


def test_smoke_preset_end_to_end(tmp_path):
  workdir = tmp_path / "run"
  proc = _cli("--config=experiments/ddpm_cifar.py:smoke", f"--workdir={workdir}",
              f"--config.data.data_dir={tmp_path / 'tfds'}")
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  _assert_quiet_start(proc.stderr)
  assert "step 6/6" in proc.stdout and "img/s" in proc.stdout and "ETA" in proc.stdout
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  assert [r["step"] for r in rows if "train/loss" in r] == [2, 4, 6]
  scored = [r for r in rows if "samples/fid" in r]   # sample metrics in the digits feature space, at the end
  assert [r["step"] for r in scored] == [6] and scored[0]["samples/fid"] > 0
  assert 0 <= scored[0]["samples/precision"] <= 1 and 1 <= scored[0]["samples/classes_covered"] <= 10
  assert sorted(os.listdir(workdir / "checkpoints")) == ["3", "6"]
  png = workdir / "samples" / "step_6.png"
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert (workdir / "loss_curve.png").exists()
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir / "tensorboard"))
  config = json.load(open(workdir / "config.json"))
  assert config["config"]["preset"] == "smoke" and config["runtime"]["device_count"] >= 1
  assert (config["experiment"], config["preset"], config["config"]["family"]) == ("experiments.ddpm_cifar", "smoke",
                                                                                  "ddpm")
  assert "xla_cpu_experimental_ynn_fusion_type" in config["runtime"]["XLA_FLAGS"]

  # Rerunning the finished command resumes at step 6 and has nothing left to do.
  again = _cli("--config=experiments/ddpm_cifar.py:smoke", f"--workdir={workdir}",
               f"--config.data.data_dir={tmp_path / 'tfds'}")
  assert again.returncode == 0 and "resumed from checkpoint at step 6" in again.stdout
  _assert_quiet_start(again.stderr)
  assert again.stderr.strip() == "", again.stderr      # data built, nothing to train: not a line on stderr

  # experiments.sample on the finished run: DDIM in 10 steps, two batches, an .npz of uint8 and a grid.
  out = tmp_path / "ddim.npz"
  sample = _cli("--workdir=" + str(workdir), "--num=6", "--batch=4", "--sampler=ddim", "--steps=10", "--eta=0",
                f"--out={out}", "--config.diffusion.clip_x0=False", module="experiments.sample")
  assert sample.returncode == 0, sample.stderr[-3000:]
  assert "checkpoint.py" not in sample.stderr and "samples 6/6" in sample.stderr   # progress, not Orbax's INFO lines
  import numpy as np
  with np.load(out) as z:
    images, meta = z["images"], json.loads(str(z["meta"]))
  assert images.shape == (6, 8, 8, 1) and images.dtype == np.uint8 and images.std() > 0
  assert meta["step"] == 6 and meta["options"] == {"sampler": "ddim", "steps": 10, "eta": 0.0}
  assert meta["overrides"] == {"diffusion.clip_x0": False} and meta["fresh_batches"] == 2
  assert (tmp_path / "ddim.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (tmp_path / "ddim.npz.parts").exists()
  bad = _cli("--workdir=" + str(workdir), "--sampler=plms", module="experiments.sample")
  assert bad.returncode == 2 and "diffusion.sampler='plms'; choose one of: ancestral, ddim" in bad.stderr
  assert "samples 0/" not in bad.stderr
  # a condition the run does not take: one line, nothing sampled
  bad = _cli("--workdir=" + str(workdir), "--label=3", module="experiments.sample")
  assert bad.returncode == 2 and "--label: the 'ddpm' run takes no class label (its conditions: none, it is " \
      "unconditional)" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_ddpm_on_2d_points_and_sampling_them(tmp_path):
  """The DDPM family on vectors (experiments.ddpm_toy2d, an MLP denoiser) from the command line, then
  experiments.sample on it: the points are saved as float32 (not cast to uint8) with a scatter plot."""
  workdir = tmp_path / "toy"
  proc = _cli("--config=experiments/ddpm_toy2d.py:smoke", f"--workdir={workdir}", module="experiments.ddpm_toy2d")
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  final = rows[-1]
  assert final["step"] == 6 and np.isfinite(final["test/nll_nats"]) and final["test/true_entropy_nats"] > 1.6
  assert 0 <= final["samples/modes_covered"] <= 8
  out = tmp_path / "points.npz"
  sample = _cli(f"--workdir={workdir}", "--num=50", f"--out={out}", module="experiments.sample")
  assert sample.returncode == 0, sample.stderr[-3000:]
  with np.load(out) as z:
    assert z["points"].shape == (50, 2) and z["points"].dtype == np.float32 and "images" not in z
    assert np.all(np.isfinite(z["points"])) and np.std(z["points"]) > 0.1
  assert (tmp_path / "points.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _assert_quiet_start(stderr):
  """TensorFlow's import notices (oneDNN, the absl pre-initialisation warning) are cut; -v keeps them (checked in
  tests/train/test_fault_injection.py)."""
  from jaxgen.train.runtime import STARTUP_NOISE
  assert not [line for line in stderr.splitlines() if any(n in line for n in STARTUP_NOISE)], stderr[:2000]
  assert "has no dataset_info.json" not in stderr


def test_missing_cifar10_fails_fast_with_instructions(tmp_path):
  start = time.time()
  proc = _cli(f"--workdir={tmp_path / 'run'}", f"--config.data.data_dir={tmp_path / 'tfds'}",
              "--config.data.download=False", timeout=120)
  elapsed = time.time() - start
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert str(tmp_path / "tfds") in proc.stderr and "quick" in proc.stderr and "download_and_prepare" in proc.stderr
  assert elapsed < 60
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_batch_not_divisible_by_device_count_fails_before_compiling(tmp_path):
  proc = _cli("--config=experiments/ddpm_cifar.py:smoke", f"--workdir={tmp_path / 'run'}",
              "--config.batch_size=12", f"--config.data.data_dir={tmp_path / 'tfds'}",
              extra_env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}, timeout=120)
  assert proc.returncode == 2
  assert "batch_size=12 is not divisible by the number of devices (8)" in proc.stderr
  assert "compiling the train step" not in proc.stdout and "compiled train step" not in proc.stdout


def test_unknown_preset_is_named():
  from experiments.ddpm_cifar import get_config
  with pytest.raises(ValueError, match="unknown preset 'fast'; choose one of: paper, quick, quick_cond, quick_shapes, smoke"):
    get_config("fast")


def test_paper_preset_is_the_ho_et_al_recipe():
  from experiments.ddpm_cifar import get_config
  c = get_config()
  assert (c.data.name, c.batch_size, c.num_train_steps, c.data.random_flip) == ("cifar10", 128, 800_000, True)
  assert (c.optim.learning_rate, c.optim.warmup_steps, c.optim.grad_clip, c.optim.ema_decay) == (2e-4, 5000, 1.0, 0.9999)
  assert (c.model.ch, tuple(c.model.ch_mult), c.model.num_res_blocks, tuple(c.model.attn_resolutions),
          c.model.dropout) == (128, (1, 2, 2, 2), 2, (16,), 0.1)
  assert (c.diffusion.num_timesteps, c.diffusion.beta_schedule, c.diffusion.beta_start, c.diffusion.beta_end) == \
      (1000, "linear", 1e-4, 0.02)
