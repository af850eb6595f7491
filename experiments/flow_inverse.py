r"""Flows as priors for inverse problems (Chávez 2022, arXiv 2110.13285) on held-out digits.

y = A x + noise for denoising (A = I) and inpainting (A hides a centred block); x is recovered by MAP in the
latent of a trained Glow and by posterior samples (MALA in the latent), and compared by PSNR
(10 log10(1 / MSE), pixels in [0, 1]) with the no-prior estimate (the observation; hidden pixels set to the
training mean) and with a latent fit without the prior term.

A study over a finished run: it restores the Glow of --config.prior_workdir (jaxgen.train.run.load_run) and
writes its results into its own --workdir.
COMMAND: train the prior, then solve the problems with it:
  python -m experiments.glow_cifar --config=experiments/glow_cifar.py:quick --workdir=workdirs/glow_quick
  python -m experiments.flow_inverse --config=experiments/flow_inverse.py:quick \
      --config.prior_workdir=workdirs/glow_quick --workdir=workdirs/flow_inverse_quick
CI check (on a glow_cifar smoke run):
  python -m experiments.flow_inverse --config=experiments/flow_inverse.py:smoke \
      --config.prior_workdir=/tmp/glow_smoke --workdir=/tmp/flow_inv_smoke

EXPECTED
  workdir/inverse.json (PSNRs, dB, mean over the 300 held-out digits) and workdir/figures/inverse_*.png
  (rows: truth, observation, no prior, latent fit, MAP, one posterior sample, posterior mean), and the MALA
  acceptance rate; the same numbers as test/<task>_psnr_<estimate> in workdir/metrics.jsonl.
"""
from __future__ import annotations

import ml_collections

PRESETS = ("quick", "smoke")


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
  preset = preset or "quick"
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)} (digits only)")
  c = ml_collections.ConfigDict()
  c.study = "flow_inverse"
  c.preset = preset
  c.seed = 0
  c.prior_workdir = "workdirs/glow_quick" if preset == "quick" else ml_collections.config_dict.placeholder(str)
  c.inverse = dict(denoise_sigma=0.2, inpaint_sigma=0.05, block=4, map_steps=300, map_learning_rate=0.01,
                   mala_steps=400, mala_step_size=1e-3, num_chains=2)
  if preset == "smoke":
    c.inverse.update(map_steps=5, mala_steps=6, num_chains=2)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
