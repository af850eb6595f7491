"""Bad command lines end with one line on stderr starting with 'error:', exit code 2, no traceback, before
TensorFlow or JAX start (every experiment shares this command line)."""
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(module, *args):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  t0 = time.time()
  proc = subprocess.run([sys.executable, "-m", f"experiments.{module}", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=120)
  return proc, time.time() - t0


@pytest.mark.parametrize("module, args, message", [
    ("ddpm_cifar", ["--config=experiments/ddpm_cifar.py:fast"],
     "error: unknown preset 'fast'; choose one of: paper, quick, quick_cond, quick_shapes, smoke"),
    ("ddpm_cifar", ["--config=experiments/ddpm_cifar.py:smoke", "--config.nonexistent=1"],
     "error: unknown config field 'nonexistent'"),
    ("ddpm_cifar", ["--config.optim.learnin_rate=1"],
     "error: unknown config field 'optim.learnin_rate'; closest: optim.learning_rate"),
    ("glow_cifar", ["--config=experiments/glow_cifar.py:smoke", "--config.model.dept=3"],
     "error: unknown config field 'model.dept'; closest: model.depth"),
    ("ddpm_cifar", ["--config=experiments/ddpm_cifar.py:smoke", "--config.batch_size=abc"],
     "error: --config.batch_size=abc: invalid literal for int()"),
    ("vae_digits", ["--config=experiments/vae_digits.py:smoke", "--workdir={file}"],
     "error: --workdir={file} is a file, not a directory"),
    ("dcgan_cifar", ["--config=experiments/dcgan_cifar.py:smoke", "--config.data.data_dir={file}",
                     "--workdir={tmp}/w"], "error: --config.data.data_dir={file} is not a directory"),
])
def test_bad_command_line_is_one_line_and_exit_2(tmp_path, module, args, message):
  a_file = tmp_path / "a_file"
  a_file.write_text("not a directory")
  fill = lambda s: s.format(file=a_file, tmp=tmp_path)   # noqa: E731
  proc, seconds = _cli(module, *map(fill, args))
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(fill(message)), proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr and seconds < 20


def _workdirs(tmp_path):
  """'bad': a config.json that is not JSON; 'ddpm': a DDPM run's record (no checkpoint needed to refuse)."""
  import json
  bad, ddpm = tmp_path / "bad", tmp_path / "ddpm"
  bad.mkdir()
  (bad / "config.json").write_text('{"experiment": "experiments.flow_toy2d", "config": {')
  ddpm.mkdir()
  (ddpm / "config.json").write_text(json.dumps({"experiment": "experiments.ddpm_cifar", "preset": "smoke",
                                                "config": {"family": "ddpm", "seed": 0}}))
  clip = tmp_path / "clip"
  clip.mkdir()
  (clip / "config.json").write_text(json.dumps({"experiment": "experiments.clip_shapes", "preset": "smoke",
                                                "config": {"family": "clip", "seed": 0}}))
  return {"bad": str(bad), "ddpm": str(ddpm), "clip": str(clip), "tmp": str(tmp_path)}


@pytest.mark.parametrize("module, args, message", [
    ("flow_toy2d", ["--config=experiments/flow_toy2d.py:smoke", "--workdir={bad}"],
     "error: {bad}/config.json cannot be read as a run record (JSONDecodeError"),
    ("sample", ["--workdir={bad}"], "error: {bad}/config.json cannot be read as a run record"),
    ("evaluate", ["--workdir={bad}"], "error: {bad}/config.json cannot be read as a run record"),
    ("flow_toy2d", ["--config=experiments/no_such_file.py:smoke", "--workdir={tmp}/w"],
     "error: --config=experiments/no_such_file.py:smoke: the config file experiments/no_such_file.py does not exist"),
    ("flow_toy2d", ["--config=experiments/flow_toy2d.py:smoke", "--config.prng_impl=foo", "--workdir={tmp}/w"],
     "error: bad config: prng_impl='foo'; choose one of: threefry2x32, rbg, unsafe_rbg"),
    ("flow_toy2d", ["--config=experiments/flow_toy2d.py:smoke", "--config.optim.learning_rate=1e39",
                    "--workdir={tmp}/w"], "error: bad config: optim.learning_rate=1e+39 must be a finite number"),
    ("flow_toy2d", ["--config=experiments/flow_toy2d.py:smoke", "--config.optim.learning_rate=nan",
                    "--workdir={tmp}/w"], "error: bad config: optim.learning_rate=nan must be a finite number"),
    ("evaluate", ["--workdir={ddpm}", "--temperature=0.7"],
     "error: --temperature=0.7 is a flow's sampling temperature; the run in {ddpm} is a 'ddpm' run"),
    ("evaluate", ["--workdir={clip}", "--label=3", "--num=100"],
     "error: --label, --num: the 'clip' run in {clip} draws no samples; experiments.evaluate runs its own "
     "evaluations on it"),
    ("flow_inverse", ["--config=experiments/flow_inverse.py:smoke", "--config.prior_workdir={ddpm}",
                      "--workdir={tmp}/w"], "error: bad config: prior_workdir='{ddpm}' holds a 'ddpm' run"),
])
def test_refused_runs_are_one_line_and_leave_no_trace(tmp_path, module, args, message):
  dirs = _workdirs(tmp_path)
  fill = lambda s: s.format(**dirs)   # noqa: E731
  before = sorted(str(p) for p in tmp_path.rglob("*"))
  proc, seconds = _cli(module, *map(fill, args))
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(fill(message)), proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr and seconds < 20
  assert sorted(str(p) for p in tmp_path.rglob("*")) == before     # no provenance row, no config.json, no dirs


def test_sample_help_needs_no_workdir():
  proc, _ = _cli("sample", "--help")                   # absl's --help exits with 1 after printing the help
  assert proc.returncode in (0, 1) and "error:" not in proc.stderr, proc.stderr[-2000:]
  assert "--workdir: run directory" in proc.stdout and "--num: number of samples" in proc.stdout
