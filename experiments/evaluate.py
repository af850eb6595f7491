r"""Evaluate a finished run from its samples: FID, KID, precision/recall, Inception score; reference statistics.

  python -m experiments.evaluate --workdir=workdirs/ddpm_quick [--num=50000] [--chunk=500]
  python -m experiments.evaluate reference --data=cifar10 --split=train [--data_dir=DIR] [--compare=stats.npz]
  python -m experiments.evaluate baselines --data=digits --num=1000

A run of a family that draws no samples (CLIP): its own evaluations (config.evals, e.g. clip_zero_shot's
zero-shot accuracies, linear probe and retrieval) on its latest checkpoint, written where the sample metrics go
(jaxgen.eval.run_evals). A run that samples: rebuilt with jaxgen.train.run.load_run (DDPM, flows, VAE, GANs);
--num samples (default 50,000) drawn from its latest checkpoint with the EMA params, sharded over all devices, in chunks of
--chunk under workdir/eval/step_<N>_n<num>/ (a killed evaluation resumes from the chunks it wrote); embedded in
the data set's feature space (digits, shapes: the offline feature networks, trained and cached on first use;
cifar10: the FID Inception, whose converted weights must be at hand) and compared with the training split's
reference. Writes workdir/eval/metrics.json, appends to workdir/eval/metrics.jsonl and the samples/* metrics to
workdir/metrics.jsonl. A flow's temperature: --temperature; a diffusion run's sampler: --sampler, --steps, --eta,
--guidance (stored in the record, with the sampling wall time). A conditional run samples the conditions of
its held-out split in order and reports how often the samples show what was asked (label_accuracy, attr_*,
each beside its chance level); --label, --caption or --captions=FILE ask for one class or given captions.

baselines: the same metrics for held-out real examples (the first --num of the test split) and for uniform pixel
noise, against the training split: the floor and the ceiling that a run's numbers sit between.

reference: the mean/covariance (and features) of every example of a split, uint8 as stored, cached with a
fingerprint of the data and the network; printed as JSON. --compare=FILE.npz (pytorch-fid's statistics, with
'mu' and 'sigma') prints the FID between the two, which is ~0 when both describe the same data and network.
"""
from __future__ import annotations

import json
import sys

from absl import app, flags

from jaxgen.diffusion.options import define_sampling_flags, sampling_options

flags.DEFINE_string("workdir", None, "run directory of a finished run")
flags.DEFINE_integer("num", 50_000, "number of samples")
flags.DEFINE_integer("chunk", 500, "samples per saved chunk")
flags.DEFINE_float("temperature", None, "flows: sampling temperature (default: the run's eval.sample_options)")
flags.DEFINE_integer("label", None, "conditional runs: every sample of this class (default: the held-out split's "
                     "conditions, graded for agreement)")
flags.DEFINE_string("caption", None, "caption-conditioned runs: every sample for this caption")
flags.DEFINE_string("captions", None, "caption-conditioned runs: a file of captions, one a line (cycled)")
define_sampling_flags()                       # diffusion runs: --sampler, --steps, --eta, --guidance, ...
flags.DEFINE_string("data", None, "reference: data set name (cifar10, digits, shapes, shapes_tiny)")
flags.DEFINE_string("split", "train", "reference: split")
flags.DEFINE_string("data_dir", None, "reference: TFDS data directory")
flags.DEFINE_string("inception_weights", None, "converted FID Inception weights (default $JAXGEN_INCEPTION_WEIGHTS "
                    "or ~/.cache/jaxgen/inception_fid_2015-12-05.msgpack)")
flags.DEFINE_string("compare", None, "reference: an .npz with mu and sigma to compare with (e.g. pytorch-fid's)")
FLAGS = flags.FLAGS


def _progress(message: str):
  print(message, file=sys.stderr, flush=True)


def _fail(message: str):
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


def _data_config():
  """The config of --data (and its data_dir and Inception weights) for the reference and baselines commands."""
  import ml_collections
  return ml_collections.ConfigDict(dict(data=dict(name=FLAGS.data, data_dir=FLAGS.data_dir, download=True),
                                        eval=dict(inception_weights=FLAGS.inception_weights)))


def reference_command() -> dict:
  import numpy as np
  from jaxgen.data.specs import DATASETS
  from jaxgen.eval import metrics
  from jaxgen.eval import sample_metrics as sm
  spec = DATASETS[FLAGS.data]
  splits = (spec.train_split, spec.eval_split)
  if FLAGS.split not in splits:
    _fail(f"--split={FLAGS.split}: {FLAGS.data} has {', '.join(splits)}")
  config = _data_config()
  space = sm.load_feature_space(config)
  ref = sm.reference(config, space, FLAGS.split, log=_progress)
  out = {"data": FLAGS.data, "split": FLAGS.split, "feature_space": sm.feature_space_for(FLAGS.data),
         "feature_net_test_accuracy": space.test_accuracy,
         "num_examples": int(ref["num_examples"]), "feature_dim": int(ref["mu"].shape[0]),
         "fingerprint": str(ref["fingerprint"]), "path": str(ref["path"])}
  if FLAGS.compare:
    with np.load(FLAGS.compare) as z:
      out["fid_to_compare"] = metrics.frechet_distance(ref["mu"], ref["sigma"], z["mu"], z["sigma"])
  return out


def baselines_command() -> dict:
  from jaxgen.eval import sample_metrics as sm
  config = _data_config()
  return sm.baselines(config, FLAGS.num, log=_progress)


def _check_arguments(command) -> None:
  """Errors in the command line, before TensorFlow and JAX start."""
  import os
  from jaxgen.eval.sample_metrics import FEATURE_SPACES     # no JAX or TF import
  if command not in ([], ["reference"], ["baselines"]):
    _fail(f"unknown command {' '.join(command)!r}; use `--workdir=DIR` (evaluate a run), `reference --data=...` "
          f"or `baselines --data=...`")
  if command:
    if FLAGS.data not in FEATURE_SPACES:
      _fail(f"--data={FLAGS.data}: choose one of {', '.join(sorted(FEATURE_SPACES))}")
    if command == ["baselines"] and FLAGS.num < 2:
      _fail(f"--num={FLAGS.num} must be >= 2")
    return
  if not FLAGS.workdir:
    _fail("--workdir is required (the run to evaluate)")
  if not os.path.isfile(os.path.join(FLAGS.workdir, "config.json")):
    _fail(f"--workdir={FLAGS.workdir} is not a run directory (no config.json in it)")
  given = [f for f in ("label", "caption", "captions") if FLAGS[f].value is not None]
  if len(given) > 1:
    _fail(f"--{given[0]} and --{given[1]} both ask for the condition; give one")
  if FLAGS.captions is not None and not os.path.isfile(FLAGS.captions):
    _fail(f"--captions={FLAGS.captions} is not a file (one caption a line)")
  from jaxgen.train.provenance import BadRecord, read_record    # no JAX or TF import
  try:
    family = (read_record(FLAGS.workdir).get("config") or {}).get("family")
  except BadRecord as e:
    _fail(str(e))
  from jaxgen.eval.run_evals import samples          # no JAX or TF import
  if not samples(family):
    asked = [f"--{f}" for f in ("label", "caption", "captions", "temperature", "sampler", "steps", "spacing", "eta",
                                "guidance", "variance", "num", "chunk") if f in FLAGS and FLAGS[f].present]
    if asked:
      _fail(f"{', '.join(asked)}: the {family!r} run in {FLAGS.workdir} draws no samples; experiments.evaluate runs "
            f"its own evaluations on it (without sampling options)")
    return
  if FLAGS.temperature is not None and family != "flow":
    _fail(f"--temperature={FLAGS.temperature} is a flow's sampling temperature; the run in {FLAGS.workdir} is a "
          f"{family!r} run")
  if FLAGS.num < 2 or FLAGS.chunk < 1:
    _fail(f"--num={FLAGS.num} must be >= 2 and --chunk={FLAGS.chunk} >= 1")


def main(argv):
  command = argv[1:]
  _check_arguments(command)
  from jaxgen.train import runtime
  verbose = FLAGS["verbosity"].present
  runtime.set_xla_cpu_flags()
  runtime.quiet_startup(verbose)
  from absl import logging as absl_logging
  if not verbose:
    absl_logging.set_verbosity(absl_logging.WARNING)
  from jaxgen.data.tfds import DatasetUnavailableError
  try:
    if command:
      print(json.dumps((reference_command if command == ["reference"] else baselines_command)(), indent=2))
      return
    from jaxgen.eval.run_evals import evaluate_run_evals, samples
    from jaxgen.train.provenance import read_record
    if not samples(read_record(FLAGS.workdir)["config"]["family"]):
      print(json.dumps(evaluate_run_evals(FLAGS.workdir, log=_progress), indent=2))
      return
    from jaxgen.eval.sample_metrics import evaluate_run
    options = sampling_options(FLAGS)
    if FLAGS.temperature is not None:
      options["temperature"] = FLAGS.temperature
    captions = [FLAGS.caption] if FLAGS.caption is not None else None
    if FLAGS.captions is not None:
      with open(FLAGS.captions) as f:
        captions = [line.strip() for line in f if line.strip()]
    record = evaluate_run(FLAGS.workdir, num=FLAGS.num, chunk=FLAGS.chunk, sample_options=options,
                          inception_weights=FLAGS.inception_weights, label=FLAGS.label, captions=captions,
                          log=_progress)
  except (FileNotFoundError, ValueError, DatasetUnavailableError) as e:
    _fail(str(e))
  print(json.dumps(record, indent=2))


if __name__ == "__main__":
  app.run(main)
