"""metrics.jsonl after a resume: the first row averages the same window as an uninterrupted run (the steps
before the checkpoint are saved with it), and a step stopped by SIGTERM between log boundaries is logged;
provenance records the machine (CPU model, cores, devices)."""
import json
import os
import signal

import pytest

from experiments.flow_toy2d import get_config
from jaxgen.data import train_data_fn
from jaxgen.registry import FAMILIES, resolve
from jaxgen.train import provenance, trainer


def _config():
  config = get_config("smoke")
  config.update(num_train_steps=6, log_every=2, checkpoint_every=3, sample_every=0, evals=(), tensorboard=False)
  return config


def _rows(workdir):
  return {r["step"]: r["train/loss"] for r in map(json.loads, open(os.path.join(workdir, "metrics.jsonl")))
          if "train/loss" in r}


def _train(workdir, data_fn):
  config = _config()
  return trainer.train(resolve(FAMILIES[config.family].build)(config), config, workdir, data_fn)


def test_resumed_rows_average_the_same_window(tmp_path):
  base = train_data_fn(_config())
  _train(str(tmp_path / "straight"), base)
  straight = _rows(str(tmp_path / "straight"))
  assert sorted(straight) == [2, 4, 6]

  workdir = str(tmp_path / "crashed")

  def crashing(start_step):                      # dies while fetching step 4's batch, after checkpoint 3
    for i, batch in enumerate(base(start_step)):
      if start_step + i == 3:
        raise RuntimeError("simulated crash")
      yield batch
  with pytest.raises(RuntimeError):
    _train(workdir, crashing)
  _train(workdir, base)
  assert _rows(workdir) == straight              # row 4 = mean(3, 4) in both, to the bit

  workdir = str(tmp_path / "terminated")

  def terminating(start_step):                   # SIGTERM while fetching step 5's batch: stops at step 5
    for i, batch in enumerate(base(start_step)):
      if start_step + i == 4:
        os.kill(os.getpid(), signal.SIGTERM)
      yield batch
  with pytest.raises(trainer.TrainingInterrupted) as info:
    _train(workdir, terminating)
  assert info.value.step == 5 and sorted(_rows(workdir)) == [2, 4, 5]     # step 5 is logged
  _train(workdir, base)
  rows = _rows(workdir)
  assert sorted(rows) == [2, 4, 5, 6] and rows[6] == straight[6] and rows[4] == straight[4]


def test_provenance_records_the_machine():
  record, _ = provenance.collect(argv=["x"])
  machine = record["machine"]
  assert machine["cpu_model"] and machine["cpu_count"] == os.cpu_count()
  assert machine["device_count"] >= 1 and machine["backend"] == "cpu"
