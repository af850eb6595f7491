r"""Flows as priors for inverse problems (Chávez 2022, arXiv 2110.13285) on held-out digits.

y = A x + noise for denoising (A = I) and inpainting (A hides a centred block); x is recovered by MAP in the
latent of a trained Glow and by posterior samples (MALA in the latent), and compared by PSNR
(10 log10(1 / MSE), pixels in [0, 1]) with the no-prior estimate (the observation; hidden pixels set to the
training mean) and with a latent fit without the prior term.

COMMAND: trains the glow_cifar quick model in --workdir (or resumes / reuses a finished one there, e.g. the
workdir of `python -m experiments.glow_cifar --config=experiments/glow_cifar.py:quick`), then solves the problems:
  python -m experiments.flow_inverse --config=experiments/flow_inverse.py:quick --workdir=workdirs/glow_quick
CI check:
  python -m experiments.flow_inverse --config=experiments/flow_inverse.py:smoke --workdir=/tmp/flow_inv_smoke

EXPECTED
  workdir/inverse.json (PSNRs, dB, mean over the 300 held-out digits) and workdir/figures/inverse_*.png
  (rows: truth, observation, no prior, latent fit, MAP, one posterior sample, posterior mean), and the MALA
  acceptance rate.
"""
from __future__ import annotations

import os
import sys

import ml_collections

from experiments import glow_cifar

PRESETS = ("quick", "smoke")


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
  preset = preset or "quick"
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)} (digits only)")
  c = glow_cifar.get_config(preset)     # the prior: glow_cifar's model of the same preset
  c.inverse = dict(denoise_sigma=0.2, inpaint_sigma=0.05, block=4, map_steps=300, map_learning_rate=0.01,
                   mala_steps=400, mala_step_size=1e-3, num_chains=2)
  if preset == "smoke":
    c.inverse.update(map_steps=5, mala_steps=6, num_chains=2)
  return c


def main(argv=None):
  from absl import app, flags
  from ml_collections import config_flags

  config_flags.DEFINE_config_file("config", os.path.abspath(__file__), "experiment config file[:preset]",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "run directory of the flow prior (default: workdirs/flow_inverse_<preset>)")

  def _main(_):
    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.WARNING)
    from jaxgen.flows.build import make_flow, validate_flow_config
    from jaxgen.flows.studies import run_inverse_problems
    from jaxgen.train.run import ConfigError, run_experiment
    cfg = flags.FLAGS.config
    workdir = flags.FLAGS.workdir or os.path.join("workdirs", f"flow_inverse_{cfg.preset}")
    try:
      state = run_experiment(cfg, workdir, validate=validate_flow_config, build_family=make_flow)
    except ConfigError as e:
      print(f"error: {e}", file=sys.stderr, flush=True)
      sys.exit(2)
    results = run_inverse_problems(cfg, make_flow(cfg), state.ema_params, workdir)
    print("inverse problems (PSNR dB, mean over held-out images): " +
          ", ".join(f"{k} {v:.2f}" for k, v in results.items()), flush=True)

  app.run(_main, argv=argv)


if __name__ == "__main__":
  main()
