r"""NICE, RealNVP and Glow couplings with MLP conditioners on 2-D densities: two moons, 8 Gaussians, checkerboard.

COMMAND (one data set and model per run; --config.data.name and --config.model.kind pick them):
  python -m experiments.flow_toy2d --config=experiments/flow_toy2d.py:quick --config.data.name=eight_gaussians \
      --workdir=workdirs/flow_toy2d_eight_gaussians
CI check:
  python -m experiments.flow_toy2d --config=experiments/flow_toy2d.py:smoke --workdir=/tmp/flow_toy2d_smoke

EXPECTED
  metrics.jsonl holds test_nll_nats on 20k fresh points and grid_mass (the density integrated on a grid, ~1);
  for eight_gaussians also true_entropy_nats (1.697 nats: the data's differential entropy, Monte Carlo) and kl_nats =
  test NLL - entropy on the same points (>= 0 up to Monte-Carlo error). workdir/density.png shows data, learned
  density and samples. paper: there is no paper figure for these toys; 'paper' is the longer run.
"""
from __future__ import annotations

import os

import ml_collections

from jaxgen.train.cli import PRESETS, base_config  # noqa: F401  (PRESETS: the presets this file offers)


def get_config(preset: str = "paper") -> ml_collections.ConfigDict:
  c = base_config(preset or "paper")
  c.data.name = "eight_gaussians"
  c.model = dict(kind="realnvp", num_steps=8, hidden=128, num_layers=2, num_classes=0)
  c.optim.update(learning_rate=1e-3, warmup_steps=100, grad_clip=10.0, b1=0.9, b2=0.999, eps=1e-8, ema_decay=0.99)
  c.batch_size = 512
  c.num_train_steps = 20_000
  c.log_every = 500
  c.checkpoint_every = 5000
  c.keep_checkpoints = 2
  c.sample_every = 0            # samples are points, not images: density.png is written by the eval instead
  c.num_samples = 0
  c.eval_every = 5000
  c.eval_batch_size = 4096
  c.eval = dict(num_test=20_000, grid_limit=4.0, grid_size=200)
  if preset == "quick":
    c.model.update(num_steps=6, hidden=64)
    c.batch_size = 256
    c.num_train_steps = 3000
    c.checkpoint_every = 1000
    c.eval_every = 1000
  elif preset == "smoke":
    c.model.update(num_steps=2, hidden=8)
    c.batch_size = 32
    c.num_train_steps = 4
    c.log_every = 2
    c.checkpoint_every = 2
    c.eval_every = 4
    c.eval = dict(num_test=1000, grid_limit=4.0, grid_size=50)
  return c


def main(argv=None):
  from jaxgen.flows.experiment import flow_main
  flow_main(os.path.abspath(__file__), "flow_toy2d", image=False, argv=argv)


if __name__ == "__main__":
  main()
