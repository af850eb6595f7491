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
  lines = []
  again = sample_metrics.evaluate_run(workdir, num=50, chunk=20, log=lines.append)
  assert os.stat(first).st_mtime_ns == stamp
  # progress: a line before the first (compiling) chunk, the last when done; the feature pass likewise
  assert lines[0] == "samples 0/50 (0%) | chunks of 20, 2 already drawn; the first compiles", lines
  assert any(x.startswith("samples 50/50 (100%) | ") and "took" in x for x in lines), lines
  assert any(x.startswith("features of the samples 50/50 (100%)") for x in lines), lines
  np.testing.assert_array_equal(np.load(lost)["images"], before)
  assert again["metrics"] == m


def test_cifar10_reference_and_metrics_in_the_inception_space(tmp_path, monkeypatch, capsys):
  """CIFAR-10 is graded with the FID Inception: the reference holds every example's statistics (no dropped
  remainder), computed from the features of the network; training without the weights is not blocked."""
  import sys
  import ml_collections
  import tensorflow_datasets as tfds
  from flax import serialization
  from jaxgen.data import tfds as jd
  from jaxgen.eval.convert_inception import convert_state_dict
  fixtures = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
  sys.path.insert(0, fixtures)
  from seeded import seeded_state_dict
  params = convert_state_dict(seeded_state_dict(json.load(open(os.path.join(fixtures, "inception_shapes.json")))))
  weights = tmp_path / "inception.msgpack"
  weights.write_bytes(serialization.to_bytes(params))
  config = ml_collections.ConfigDict(dict(data=dict(name="cifar10", data_dir=str(tmp_path / "tfds"), download=True),
                                          eval=dict(inception_weights=str(weights), fid_samples=10, batch_size=10)))
  monkeypatch.setattr(jd, "network_available", lambda *a, **k: True)
  with tfds.testing.mock_data(num_examples=13):
    space = sample_metrics.load_feature_space(config)
    space.batch_size = 5                                   # 13 = 5 + 5 + 3: the remainder counts too
    ref = sample_metrics.reference(config, space)
    from jaxgen.data import load_split
    images = load_split(config, "train")["image"]
  assert images.shape == (13, 32, 32, 3) and int(ref["num_examples"]) == 13
  # the network's features of each image, batch by batch (the last three from the batch of images 8-12)
  direct = np.concatenate([np.asarray(space._jitted(params, images[i:i + 5])[0], np.float64)[skip:]
                           for i, skip in ((0, 0), (5, 0), (8, 2))])
  assert direct.shape == (13, 2048)
  np.testing.assert_allclose(ref["mu"], direct.mean(0), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ref["sigma"], np.cov(direct, rowvar=False), rtol=1e-4, atol=1e-4 * np.abs(direct).max() ** 2)
  assert ref["sigma"].shape == (2048, 2048) and "13 examples" in str(ref["fingerprint"])
  err = capsys.readouterr().err               # the reference's feature pass said how far it was, on stderr
  assert "reference features of cifar10/train 0/13 (0%) | batches of 5" in err, err
  assert "reference features of cifar10/train 13/13 (100%)" in err, err
  m = sample_metrics.compare(space, images[:10], ref)
  assert m["samples/fid"] >= 0 and 1 <= m["samples/inception_score"] <= 1008 and 0 <= m["samples/recall"] <= 1

  config.eval.inception_weights = str(tmp_path / "absent.msgpack")
  eval_fn = sample_metrics.make_sample_eval(config, family=None)
  assert eval_fn(None, 0) == {}
  out = capsys.readouterr().out
  assert "warning: the 'sample_metrics' evaluation is skipped" in out and "convert_inception" in out


def test_baselines_real_held_out_digits_are_close_and_noise_far(tmp_path):
  config = get_config("smoke")              # its quickly trained digits network (eval.feature_net_steps)
  config.data.data_dir = str(tmp_path / "tfds")
  b = sample_metrics.baselines(config, 300)
  real, noise = b["held_out_real"], b["uniform_noise"]
  assert b["num"] == 300 and real["label_accuracy"] > 0.9 and real["classes_covered"] == 10
  assert real["fid"] * 10 < noise["fid"] and real["precision"] > 0.5 and noise["precision"] < 0.05
  assert real["inception_score"] > noise["inception_score"]


def test_evaluate_command_line_errors():
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  for args, message in [(["frobnicate"], "unknown command 'frobnicate'"),
                        (["reference", "--data=mnist"], "--data=mnist: choose one of cifar10, digits"),
                        ([], "--workdir is required"),
                        (["--workdir=/nonexistent/run"], "--workdir=/nonexistent/run is not a run directory")]:
    proc = subprocess.run([sys.executable, "-m", "experiments.evaluate", *args], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and message in proc.stderr, (args, proc.stderr)
    assert "Traceback" not in proc.stderr
