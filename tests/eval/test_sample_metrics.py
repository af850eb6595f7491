"""The evaluation of a finished run from its samples (experiments.evaluate): load_run, chunks that a rerun keeps
(a killed evaluation resumes), metrics in the digits feature space written to eval/metrics.json and
metrics.jsonl."""
import json
import os

import numpy as np

from experiments.ddpm_cifar import get_config
from jaxgen.eval import sample_metrics
from jaxgen.eval.feature_net import load_feature_net
from jaxgen.train import run


def test_evaluate_run_resumes_from_its_chunks(tmp_path):
  config = get_config("smoke")
  config.data.data_dir = str(tmp_path / "tfds")
  config.update(tensorboard=False, sample_every=0, evals=())
  workdir = str(tmp_path / "run")
  run.run(config, workdir, experiment="experiments.ddpm_cifar")
  load_feature_net(config, steps=100)                       # cache a (quickly trained) digits feature network
  record = sample_metrics.evaluate_run(workdir, num=50, chunk=20, log=lambda m: None)
  chunks = sorted(os.listdir(os.path.join(workdir, "eval", "step_6_n50")))
  assert chunks == ["chunk_00000.npz", "chunk_00001.npz", "chunk_00002.npz"]
  m = record["metrics"]
  assert set(m) >= {"samples/fid", "samples/kid", "samples/precision", "samples/recall", "samples/inception_score"}
  assert m["samples/fid"] > 0 and 0 <= m["samples/precision"] <= 1 and 1 <= m["samples/inception_score"] <= 10
  assert json.load(open(os.path.join(workdir, "eval", "metrics.json")))["metrics"] == m
  assert json.loads(open(os.path.join(workdir, "metrics.jsonl")).readlines()[-1])["samples/fid"] == m["samples/fid"]

  # a killed evaluation: one chunk lost; the rerun redraws only that one, identically, and the metrics agree
  first = os.path.join(workdir, "eval", "step_6_n50", "chunk_00000.npz")
  lost = os.path.join(workdir, "eval", "step_6_n50", "chunk_00001.npz")
  before = np.load(lost)["images"]
  stamp = os.stat(first).st_mtime_ns
  os.remove(lost)
  again = sample_metrics.evaluate_run(workdir, num=50, chunk=20, log=lambda m: None)
  assert os.stat(first).st_mtime_ns == stamp
  np.testing.assert_array_equal(np.load(lost)["images"], before)
  assert again["metrics"] == m
