r"""Evaluate a finished run from its samples: FID, KID, precision/recall and (with a class head) Inception score.

  python -m experiments.evaluate --workdir=workdirs/ddpm_quick --num=1000

Rebuilds the run with jaxgen.train.run.load_run (any family that samples: DDPM, flows, VAE, GANs), draws
--num samples (default 50,000) from its latest checkpoint with the EMA params in chunks of --chunk under
workdir/eval/step_<N>_n<num>/ (a killed evaluation resumes from the chunks it wrote), embeds them with the
data set's offline feature network (jaxgen.eval.feature_net: digits, shapes; trained and cached on first use)
and compares them with the training split's features. Writes workdir/eval/metrics.json and appends the
samples/* metrics to workdir/metrics.jsonl.
"""
from __future__ import annotations

import json
import sys

from absl import app, flags

flags.DEFINE_string("workdir", None, "run directory of a finished run", required=True)
flags.DEFINE_integer("num", 50_000, "number of samples")
flags.DEFINE_integer("chunk", 500, "samples per saved chunk")
FLAGS = flags.FLAGS


def main(_):
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.WARNING)
  from jaxgen.eval.sample_metrics import evaluate_run
  if FLAGS.num < 2:
    print(f"error: --num={FLAGS.num} must be >= 2", file=sys.stderr)
    sys.exit(2)
  try:
    record = evaluate_run(FLAGS.workdir, num=FLAGS.num, chunk=FLAGS.chunk, log=lambda m: print(m, flush=True))
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(json.dumps(record, indent=2))


if __name__ == "__main__":
  app.run(main)
