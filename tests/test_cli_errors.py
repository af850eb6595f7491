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
