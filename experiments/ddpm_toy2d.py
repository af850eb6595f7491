r"""DDPM on the 2-D densities (two moons, a ring of 8 Gaussians, a checkerboard) with an MLP denoiser: the
diffusion family on vectors instead of images (the same schedules, losses, samplers and bound).

COMMAND (the ring of 8 Gaussians; --config.data.name=two_moons|checkerboard for the others):
  python -m experiments.ddpm_toy2d --workdir=workdirs/ddpm_toy2d
Quick (a couple of minutes on 2 CPU cores) and CI check:
  python -m experiments.ddpm_toy2d --config=experiments/ddpm_toy2d.py:quick --workdir=workdirs/ddpm_toy2d_quick
  python -m experiments.ddpm_toy2d --config=experiments/ddpm_toy2d.py:smoke --workdir=/tmp/ddpm_toy2d_smoke

Recipe: eps prediction with L_simple, T=200 (paper: a cosine schedule for low-dimensional data), an MLP of 3
residual blocks of width 128 with a sinusoidal timestep embedding, Adam 1e-3, batch 512, EMA 0.999 with
TF's warm-up (min(0.999, (1 + t) / (10 + t)): the EMA follows the fast early training); no x0
clipping (points are unbounded); ancestral sampling with the small posterior variance.

EXPECTED
  metrics.jsonl: samples/modes_covered (of 8) and samples/high_quality_fraction of 10,000 EMA samples, and the
  variational bound on the held-out points' negative log-density in nats (test/nll_nats) beside the data's true
  entropy (test/true_entropy_nats = 1.697), as the flows report; samples/step_<N>.png are scatter plots over the
  data. docs/diffusion.md has the figures measured here.
"""
from __future__ import annotations

from jaxgen.train.presets import base_config, cadence, smoke


def get_config(preset: str = "paper"):
  c = base_config("ddpm", preset or "paper")
  c.data.name = "eight_gaussians"
  c.model = dict(kind="mlp", hidden=128, depth=3, temb_dim=64, dropout=0.0, num_classes=0)
  c.diffusion = dict(beta_schedule="cosine", num_timesteps=200, beta_start=1e-4, beta_end=0.02,
                     variance="fixed_small", clip_x0=False, prediction="eps", loss_weighting="simple",
                     sampler="ancestral", sample_steps=0)
  c.optim.update(learning_rate=1e-3, warmup_steps=100, grad_clip=1.0, ema_decay=0.999, ema_warmup=True)
  c.evals = ("mode_coverage", "vlb")
  c.eval.update(batch_size=2000)
  c.batch_size = 512
  c.num_samples = 2000
  cadence(c, steps=20_000, every=5000, log_every=500)
  if c.preset == "quick":
    cadence(c, steps=3000, every=1000, log_every=250)
  elif c.preset == "smoke":
    c.model.update(hidden=32, depth=1, temb_dim=16)
    c.diffusion.num_timesteps = 20
    smoke(c, batch_size=64, num_samples=200)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
