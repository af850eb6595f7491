"""The flow experiments' smoke presets end to end through their command lines (subprocesses, as a user runs
them): held-out bits/dim in metrics.jsonl, figures, and the studies' JSON files."""
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(module, *args, timeout=600):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run([sys.executable, "-m", f"experiments.{module}", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  return proc


def _rows(workdir):
  return [json.loads(line) for line in open(workdir / "metrics.jsonl")]


def _is_png(path):
  return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_glow_smoke_then_flow_inverse_on_its_workdir(tmp_path):
  workdir = tmp_path / "glow"
  _cli("glow_cifar", "--config=experiments/glow_cifar.py:smoke", f"--workdir={workdir}")
  final = [r for r in _rows(workdir) if r.get("step") == 4 and "test_bits_per_dim" in r]
  assert len(final) == 1 and final[0]["num_test_examples"] == 300.0
  assert 0 < final[0]["test_bits_per_dim"] < 20 and "samples_T0.7_probe_confidence" in final[0]
  for name in ("samples_T0.5.png", "samples_T0.7.png", "samples_T1.png", "interpolations.png",
               "manipulate_3_to_8.png"):
    assert _is_png(workdir / "figures" / name), name
  # flow_inverse reuses the finished prior in that workdir (no training) and solves the problems
  proc = _cli("flow_inverse", "--config=experiments/flow_inverse.py:smoke", f"--workdir={workdir}")
  assert "resumed from checkpoint at step 4" in proc.stdout and "trained 0 steps" in proc.stdout
  assert "inverse problems (PSNR dB" in proc.stdout
  for name in ("inverse_denoise.png", "inverse_inpaint.png"):
    assert _is_png(workdir / "figures" / name), name
  result = json.load(open(workdir / "inverse.json"))["psnr_db_mean_over_images"]
  assert result["num_test_examples"] == 300
  for task in ("denoise", "inpaint"):
    for est in ("no_prior", "latent_fit_no_prior", "map", "posterior_sample", "posterior_mean"):
      assert np.isfinite(result[f"{task}_psnr_{est}"]) and result[f"{task}_psnr_{est}"] > 0
    assert 0.0 <= result[f"{task}_mala_accept_rate"] <= 1.0
  # the no-prior denoising estimate is the clipped observation: its PSNR is about 10 log10(1 / 0.2^2) = 14 dB
  # or better (clipping to [0, 1] only helps)
  assert 13.5 < result["denoise_psnr_no_prior"] < 18


def test_flow_classifier_and_realnvp_and_toy2d_smoke(tmp_path):
  cls = tmp_path / "cls"
  _cli("flow_classifier", "--config=experiments/flow_classifier.py:smoke", f"--workdir={cls}")
  c = json.load(open(cls / "classifier.json"))
  assert c["num_test_examples"] == 300 and 0 <= c["flow_classifier_test_accuracy"] <= 1
  assert abs(c["mlp_num_params"] - c["flow_num_params"]) / c["flow_num_params"] < 0.1

  rnvp = tmp_path / "rnvp"
  _cli("realnvp_cifar", "--config=experiments/realnvp_cifar.py:smoke", f"--workdir={rnvp}")
  assert any("test_bits_per_dim" in r for r in _rows(rnvp)) and _is_png(rnvp / "figures" / "samples_T0.7.png")

  toy = tmp_path / "toy"
  _cli("flow_toy2d", "--config=experiments/flow_toy2d.py:smoke", "--config.data.name=eight_gaussians",
       f"--workdir={toy}")
  last = [r for r in _rows(toy) if "test_nll_nats" in r][-1]
  assert abs(last["true_entropy_nats"] - 1.697) < 0.01 and np.isfinite(last["test_nll_nats"])
  assert _is_png(toy / "density.png")
