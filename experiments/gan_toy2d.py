r"""The original GAN (Goodfellow et al. 2014) with MLPs on a ring of 8 Gaussians: the mode-collapse benchmark.

COMMAND (non-saturating generator loss; --config.gan.loss=minimax for the minimax game, =hinge, or
=wgan --config.gan.gp_weight=10 for WGAN-GP):
  python -m experiments.gan_toy2d --workdir=workdirs/gan_toy2d
Quick (about a minute on 2 CPU cores) and CI check:
  python -m experiments.gan_toy2d --config=experiments/gan_toy2d.py:quick --workdir=workdirs/gan_toy2d_quick
  python -m experiments.gan_toy2d --config=experiments/gan_toy2d.py:smoke --workdir=/tmp/gan_toy2d_smoke

EXPECTED
  metrics.jsonl carries samples/modes_covered (of 8; a mode counts when >= 20 of 10,000 EMA-generator samples
  fall within 3 std of it) and samples/high_quality_fraction (samples within 3 std of a mode);
  samples/step_<N>.png are scatter plots of EMA-generator samples over the data. See docs/vae_gan.md for the
  figures measured here.
"""
from __future__ import annotations

from jaxgen.train.presets import base_config, cadence, smoke


def get_config(preset: str = "paper"):
  c = base_config("gan", preset or "paper")
  c.data.name = "eight_gaussians"
  c.model = dict(kind="mlp", latent_dim=16, g_hidden=(128, 128), d_hidden=(128, 128))
  c.gan = dict(loss="non_saturating", gp_weight=0.0, r1_gamma=0.0, truncation=0.0)
  c.optim.update(b1=0.5, b2=0.999, ema_decay=0.99,
                 groups=dict(generator=dict(learning_rate=1e-3), discriminator=dict(learning_rate=1e-3)))
  c.evals = ("mode_coverage",)
  c.batch_size = 256
  c.num_samples = 2000              # points: the sample figures are scatter plots over the data
  cadence(c, steps=20_000, every=5000, log_every=500)
  if c.preset == "quick":
    cadence(c, steps=3000, every=1000, log_every=500)
  elif c.preset == "smoke":
    smoke(c, batch_size=64, num_samples=500)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
