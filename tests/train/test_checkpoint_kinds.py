"""A damaged checkpoint is moved aside; an intact one of another shape (the config changed) is refused in one
line naming the fields, nothing moved, config.json and provenance.jsonl untouched; a workdir whose checkpoints
are all in damaged/ is not restarted from step 0 without --allow_restart."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from experiments.flow_toy2d import get_config
from jaxgen.registry import FAMILIES, resolve
from jaxgen.data import train_data_fn
from jaxgen.train import run, trainer
from jaxgen.train.checkpoint import CheckpointMismatch, CheckpointUnavailable


def _config(**model):
  config = get_config("smoke")
  config.update(num_train_steps=4, log_every=1, checkpoint_every=2, sample_every=0, evals=(), tensorboard=False)
  config.model.update(**model)
  return config


def _train(config, workdir, **kw):
  family = resolve(FAMILIES[config.family].build)(config)
  return trainer.train(family, config, workdir, train_data_fn(config), **kw)


def _snapshot(workdir):
  files = {}
  for d, _, fs in os.walk(workdir):
    for f in fs:
      if f != ".lock":
        p = os.path.join(d, f)
        files[os.path.relpath(p, workdir)] = open(p, "rb").read()
  return files


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A 4-step run through run.run (config.json, provenance.jsonl, checkpoints 2 and 4)."""
  workdir = str(tmp_path_factory.mktemp("kinds") / "run")
  run.run(_config(), workdir, experiment="experiments.flow_toy2d")
  return workdir


def test_a_changed_width_is_refused_before_anything_is_written(trained):
  before = _snapshot(trained)
  wider = _config(hidden=16)
  with pytest.raises(run.ConfigError) as info:            # allowed config change: the shapes still refuse it
    run.run(wider, trained, experiment="experiments.flow_toy2d", allow_config_change=True)
  message = str(info.value)
  assert "\n" not in message and "intact" in message and "(2, 8) -> (2, 16)" in message, message
  assert "params." in message and "nothing was moved" in message
  os.rename(os.path.join(trained, "config.json"), os.path.join(trained, "config.saved"))
  try:                                                    # no config.json to compare with: the shapes still refuse
    with pytest.raises(run.ConfigError, match="intact but holds other shapes"):
      run.run(wider, trained, experiment="experiments.flow_toy2d")
  finally:
    os.rename(os.path.join(trained, "config.saved"), os.path.join(trained, "config.json"))
  assert _snapshot(trained) == before                     # nothing moved, no provenance row, config.json as it was


def test_the_trainer_refuses_a_mismatch_without_moving_it(trained, tmp_path):
  import shutil
  workdir = str(tmp_path / "copy")
  shutil.copytree(trained, workdir)
  before = _snapshot(workdir)
  with pytest.raises(CheckpointMismatch, match="params.*nothing was moved"):
    _train(_config(hidden=16), workdir)
  assert _snapshot(workdir) == before
  assert not os.path.exists(os.path.join(workdir, "checkpoints", "damaged"))


def test_all_damaged_needs_allow_restart(trained, tmp_path):
  import shutil
  workdir = str(tmp_path / "copy")
  shutil.copytree(trained, workdir)
  ckpts = os.path.join(workdir, "checkpoints")
  os.makedirs(os.path.join(ckpts, "damaged"))
  for step in ("2", "4"):
    os.rename(os.path.join(ckpts, step), os.path.join(ckpts, "damaged", f"{step}-20260101"))
  rows = open(os.path.join(workdir, "metrics.jsonl")).read()
  with pytest.raises(CheckpointUnavailable, match="--allow_restart"):
    _train(_config(), workdir)
  assert open(os.path.join(workdir, "metrics.jsonl")).read() == rows
  state = _train(_config(), workdir, allow_restart=True)
  assert int(state.step) == 4
  assert [json.loads(l)["step"] for l in open(os.path.join(workdir, "metrics.jsonl")) if "train/loss" in l] == \
      [1, 2, 3, 4]


def _truncate_data_files(step_dir):
  files = [os.path.join(d, f) for d, _, fs in os.walk(step_dir) for f in fs]
  for f in sorted(files, key=os.path.getsize)[-3:]:             # the array data, not the small metadata
    with open(f, "r+b") as h:
      h.truncate(max(os.path.getsize(f) // 3, 1))


def test_sample_and_load_run_fall_back_past_a_damaged_latest_checkpoint(trained, tmp_path, capfd):
  workdir = str(tmp_path / "copy")
  shutil.copytree(trained, workdir)
  _truncate_data_files(os.path.join(workdir, "checkpoints", "4"))
  restored = run.load_run(workdir)
  err = capfd.readouterr().err
  assert restored.step == 2 and int(restored.state.step) == 2
  assert "checkpoint 4" in err and "is damaged" in err and "note: using checkpoint 2" in err, err
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]   # nothing moved
  with pytest.raises(ValueError, match="checkpoint 4 .* is damaged and cannot be restored"):
    run.load_run(workdir, step=4)
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  proc = subprocess.run([sys.executable, "-m", "experiments.sample", f"--workdir={workdir}", "--num=4", "--batch=4",
                         f"--out={tmp_path}/s.npz"], cwd=root, capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, PYTHONPATH=root))
  assert "note: using checkpoint 2" in proc.stderr, proc.stderr[-2000:]
  import numpy as np
  with np.load(f"{tmp_path}/s.npz") as z:
    assert json.loads(str(z["meta"]))["step"] == 2 and z["points"].shape == (4, 2)
