r"""The original GAN (Goodfellow et al. 2014) with MLPs on a ring of 8 Gaussians: the mode-collapse benchmark.

COMMAND (non-saturating generator loss; --config.gan.loss=minimax for the minimax game, =hinge, or
=wgan --config.gan.gp_weight=10 for WGAN-GP):
  python -m experiments.gan_toy2d --workdir=workdirs/gan_toy2d
Quick (about a minute on 2 CPU cores) and CI check:
  python -m experiments.gan_toy2d --config=experiments/gan_toy2d.py:quick --workdir=workdirs/gan_toy2d_quick
  python -m experiments.gan_toy2d --config=experiments/gan_toy2d.py:smoke --workdir=/tmp/gan_toy2d_smoke

EXPECTED
  metrics.jsonl carries modes_covered (of 8; a mode counts when >= 20 of 10,000 EMA-generator samples fall
  within 3 std of it) and high_quality_fraction (samples within 3 std of a mode); samples/step_<N>.png are
  scatter plots. See docs/vae_gan.md for the figures measured here.
"""
from __future__ import annotations

from jaxgen.train.cli import base_config, experiment_main


def get_config(preset: str = "paper"):
  c = base_config(preset or "paper")
  c.data = dict(name="eight_gaussians")
  c.model = dict(kind="mlp", latent_dim=16, g_hidden=(128, 128), d_hidden=(128, 128))
  c.gan = dict(loss="non_saturating", gp_weight=0.0, r1_gamma=0.0, truncation=0.0, g_learning_rate=1e-3,
               d_learning_rate=1e-3, b1=0.5, b2=0.999)
  c.optim.update(ema_decay=0.99)     # read by the trainer for the EMA only; the players' Adams are in c.gan
  c.batch_size = 256
  c.num_train_steps = 20_000
  c.log_every = 500
  c.checkpoint_every = 5000
  c.sample_every = 0                 # no image grids: eval_fn draws scatter plots instead
  c.eval_every = 5000
  if c.preset == "quick":
    c.num_train_steps = 3000
    c.checkpoint_every = 1000
    c.eval_every = 1000
  elif c.preset == "smoke":
    c.batch_size = 64
    c.num_train_steps = 6
    c.log_every = 2
    c.checkpoint_every = 3
    c.eval_every = 6
  return c


def main(argv=None):
  from jaxgen.gan.build import make_gan, make_toy2d_eval_fn, toy2d_data_fn, validate_gan_config
  experiment_main(__file__, "gan_toy2d", validate=validate_gan_config, build_family=make_gan,
                  data_fn_factory=toy2d_data_fn, eval_fn_factory=make_toy2d_eval_fn, argv=argv)


if __name__ == "__main__":
  main()
