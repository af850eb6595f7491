r"""NICE, RealNVP and Glow couplings with MLP conditioners on 2-D densities: two moons, 8 Gaussians, checkerboard.

COMMAND (one data set and model per run; --config.data.name and --config.model.kind pick them):
  python -m experiments.flow_toy2d --config=experiments/flow_toy2d.py:quick --config.data.name=eight_gaussians \
      --workdir=workdirs/flow_toy2d_eight_gaussians
CI check:
  python -m experiments.flow_toy2d --config=experiments/flow_toy2d.py:smoke --workdir=/tmp/flow_toy2d_smoke

EXPECTED
  metrics.jsonl holds test/nll_nats on the 20k fixed held-out points and test/grid_mass (the density integrated on
  a grid, ~1); for eight_gaussians also test/true_entropy_nats (1.697 nats: the data's differential entropy,
  Monte Carlo) and test/kl_nats = test NLL - entropy on the same points (>= 0 up to Monte-Carlo error).
  workdir/density.png shows data, learned density and samples; samples/step_<N>.png are scatter plots. paper: there is no paper figure for these toys; 'paper' is the longer run.
"""
from __future__ import annotations

import ml_collections

from jaxgen.train.presets import PRESETS, base_config, cadence, smoke  # noqa: F401  (PRESETS: this file's presets)


def get_config(preset: str = "paper") -> ml_collections.ConfigDict:
  c = base_config("flow", preset or "paper")
  c.data.name = "eight_gaussians"
  c.model = dict(kind="realnvp", num_steps=8, hidden=128, num_layers=2, num_classes=0)
  c.optim.update(learning_rate=1e-3, warmup_steps=100, grad_clip=10.0, b1=0.9, b2=0.999, eps=1e-8, ema_decay=0.99)
  c.batch_size = 512
  c.num_samples = 2000          # points: the sample figures are scatter plots over the data
  cadence(c, steps=20_000, every=5000, log_every=500)
  c.evals = ("flow_heldout", "flow_density")
  c.eval.update(batch_size=4096, grid_limit=4.0, grid_size=200)
  if preset == "quick":
    c.model.update(num_steps=6, hidden=64)
    c.batch_size = 256
    cadence(c, steps=3000, every=1000, log_every=500)
  elif preset == "smoke":
    c.model.update(num_steps=2, hidden=8)
    c.eval.grid_size = 50
    smoke(c, batch_size=32, num_samples=500)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
