"""The flow experiments' smoke presets end to end through their command lines (subprocesses, as a user runs
them): held-out bits/dim in metrics.jsonl, figures, and the studies' JSON files."""
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(module, *args, timeout=600):
  return _cli_concurrently([(module, args)], timeout=timeout)[0]


def _cli_concurrently(commands, timeout=600):
  """Run the experiments' command lines at the same time (each spends most of its time importing and
  compiling, one core's work: two cores run two at once) and check that every one succeeded."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  procs = [subprocess.Popen([sys.executable, "-m", f"experiments.{module}", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for module, args in commands]
  results = []
  try:
    for p in procs:
      out, err = p.communicate(timeout=timeout)
      results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for r in results:
    assert r.returncode == 0, " ".join(r.args) + "\n" + r.stdout[-2000:] + r.stderr[-3000:]
  return results


def _rows(workdir):
  return [json.loads(line) for line in open(workdir / "metrics.jsonl")]


def _is_png(path):
  return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_glow_smoke_then_flow_inverse_on_it(tmp_path):
  workdir = tmp_path / "glow"
  _cli("glow_cifar", "--config=experiments/glow_cifar.py:smoke", f"--workdir={workdir}")
  final = [r for r in _rows(workdir) if r.get("step") == 6 and "test/bits_per_dim" in r]
  assert len(final) == 1 and final[0]["test/num_examples"] == 300.0
  assert 0 < final[0]["test/bits_per_dim"] < 20
  scored = [r for r in _rows(workdir) if "samples/T0.7/fid" in r]     # the digits feature space, per temperature
  assert len(scored) == 1 and scored[0]["samples/T0.7/fid"] > 0 and 0 <= scored[0]["samples/T0.7/precision"] <= 1
  assert 0 <= scored[0]["samples/manipulated_3_to_8_fraction"] <= 1
  for name in ("samples_T0.5.png", "samples_T0.7.png", "samples_T1.png", "interpolations.png",
               "manipulate_3_to_8.png"):
    assert _is_png(workdir / "figures" / name), name
  # flow_inverse is a study over the finished prior (load_run): its own workdir, nothing trained
  study = tmp_path / "inverse"
  proc = _cli("flow_inverse", "--config=experiments/flow_inverse.py:smoke", f"--config.prior_workdir={workdir}",
              f"--workdir={study}")
  assert "flow_inverse on" in proc.stdout and "denoise_psnr_map" in proc.stdout
  assert not (study / "checkpoints").exists()
  for name in ("inverse_denoise.png", "inverse_inpaint.png"):
    assert _is_png(study / "figures" / name), name
  result = json.load(open(study / "inverse.json"))["psnr_db_mean_over_images"]
  assert result["num_test_examples"] == 300
  for task in ("denoise", "inpaint"):
    for est in ("no_prior", "latent_fit_no_prior", "map", "posterior_sample", "posterior_mean"):
      assert np.isfinite(result[f"{task}_psnr_{est}"]) and result[f"{task}_psnr_{est}"] > 0
    assert 0.0 <= result[f"{task}_mala_accept_rate"] <= 1.0
  # the no-prior denoising estimate is the clipped observation: its PSNR is about 10 log10(1 / 0.2^2) = 14 dB
  # or better (clipping to [0, 1] only helps)
  assert 13.5 < result["denoise_psnr_no_prior"] < 18
  row = _rows(study)[-1]
  assert row["step"] == 6 and row["test/denoise_psnr_map"] == result["denoise_psnr_map"]
  assert json.load(open(study / "config.json"))["config"]["study"] == "flow_inverse"


def test_flow_classifier_and_realnvp_and_toy2d_smoke(tmp_path):
  cls, rnvp, toy = tmp_path / "cls", tmp_path / "rnvp", tmp_path / "toy"
  _cli_concurrently([
      ("flow_classifier", ("--config=experiments/flow_classifier.py:smoke", f"--workdir={cls}")),
      ("realnvp_cifar", ("--config=experiments/realnvp_cifar.py:smoke", f"--workdir={rnvp}")),
      ("flow_toy2d", ("--config=experiments/flow_toy2d.py:smoke", "--config.data.name=eight_gaussians",
                      f"--workdir={toy}"))])
  c = json.load(open(cls / "classifier.json"))
  assert c["num_test_examples"] == 300 and 0 <= c["flow_classifier_test_accuracy"] <= 1
  assert abs(c["mlp_num_params"] - c["flow_num_params"]) / c["flow_num_params"] < 0.1
  last = _rows(cls)[-1]
  assert last["test/classifier_accuracy"] == c["flow_classifier_test_accuracy"]
  assert 0 <= last["samples/T0.7/label_accuracy"] <= 1      # conditional samples: asked class vs the digits network

  assert any("test/bits_per_dim" in r for r in _rows(rnvp)) and _is_png(rnvp / "figures" / "samples_T0.7.png")

  last = [r for r in _rows(toy) if "test/kl_nats" in r][-1]
  assert abs(last["test/true_entropy_nats"] - 1.697) < 0.01 and np.isfinite(last["test/kl_nats"])
  assert _is_png(toy / "density.png") and _is_png(toy / "samples" / "step_6.png")    # a scatter plot of points
