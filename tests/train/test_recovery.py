"""Recovering a run directory: a damaged latest checkpoint is moved aside and the previous one restored (and with
none left a clear error); after a crash between two checkpoints the resumed run logs every step once, in
metrics.jsonl and in TensorBoard."""
import json
import os

import numpy as np
import pytest

from experiments.ddpm_cifar import get_config
from jaxgen.data import train_data_fn
from jaxgen.diffusion.build import make_ddpm
from jaxgen.train import trainer
from jaxgen.train.checkpoint import CheckpointUnavailable


def _config(steps, **kw):
  config = get_config("smoke")
  config.update(num_train_steps=steps, log_every=1, checkpoint_every=2, sample_every=0, evals=(), **kw)
  return config


def _truncate_data_files(step_dir):
  files = [os.path.join(d, f) for d, _, fs in os.walk(step_dir) for f in fs]
  big = sorted(files, key=os.path.getsize)[-3:]                 # the array data, not the small metadata
  for f in big:
    with open(f, "r+b") as h:
      h.truncate(max(os.path.getsize(f) // 3, 1))


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  cfg = _config(4, tensorboard=False)
  trainer.train(make_ddpm(cfg), cfg, workdir, train_data_fn(cfg))
  ckpts = os.path.join(workdir, "checkpoints")
  assert sorted(os.listdir(ckpts)) == ["2", "4"]
  _truncate_data_files(os.path.join(ckpts, "4"))
  capsys.readouterr()
  state = trainer.train(make_ddpm(_config(6, tensorboard=False)), _config(6, tensorboard=False), workdir,
                        train_data_fn(cfg))
  out = capsys.readouterr().out
  warning = [l for l in out.splitlines() if l.startswith("warning: checkpoint 4")]
  assert len(warning) == 1 and "cannot be restored" in warning[0] and "trying the previous one" in warning[0]
  assert "resumed from checkpoint at step 2" in out and int(state.step) == 6
  assert len(os.listdir(os.path.join(ckpts, "damaged"))) == 1               # moved aside, not deleted
  for step in ("4", "6"):
    _truncate_data_files(os.path.join(ckpts, step))
  with pytest.raises(CheckpointUnavailable, match="no checkpoint in .*checkpoints can be restored"):
    trainer.train(make_ddpm(_config(8, tensorboard=False)), _config(8, tensorboard=False), workdir,
                  train_data_fn(cfg))


def _tb_steps(logdir, tag):
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
  acc = EventAccumulator(logdir, size_guidance={"tensors": 0, "scalars": 0})
  acc.Reload()
  return [e.step for e in acc.Tensors(tag)]


def test_a_resumed_run_logs_every_step_once(tmp_path):
  workdir = str(tmp_path / "run")
  cfg = _config(6)
  base = train_data_fn(cfg)

  def crashing(start_step):                         # dies like a killed process while fetching step 6's batch
    for i, batch in enumerate(base(start_step)):
      if start_step + i == 5:
        raise RuntimeError("simulated crash")
      yield batch

  with pytest.raises(RuntimeError, match="simulated crash"):
    trainer.train(make_ddpm(cfg), cfg, workdir, crashing)
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in rows if "train/loss" in r] == [1, 2, 3, 4, 5]   # 5 logged after checkpoint 4
  assert _tb_steps(os.path.join(workdir, "tensorboard"), "train/loss") == [1, 2, 3, 4, 5]
  trainer.train(make_ddpm(cfg), cfg, workdir, base)
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in rows if "train/loss" in r] == [1, 2, 3, 4, 5, 6]
  assert _tb_steps(os.path.join(workdir, "tensorboard"), "train/loss") == [1, 2, 3, 4, 5, 6]
