r"""Glow (Kingma & Dhariwal 2018) on CIFAR-10: exact log-likelihood, bits/dim of held-out data.

COMMAND (the paper's recipe; TFDS prepares CIFAR-10 on first use, which needs the network):
  python -m experiments.glow_cifar --workdir=workdirs/glow_cifar
Offline, on the bundled 8x8 digits (a few minutes on 2 CPU cores):
  python -m experiments.glow_cifar --config=experiments/glow_cifar.py:quick --workdir=workdirs/glow_quick
CI check:
  python -m experiments.glow_cifar --config=experiments/glow_cifar.py:smoke --workdir=/tmp/glow_smoke
Rerunning a command on the same --workdir resumes (actnorm keeps its trained parameters: its data-dependent
init runs only when parameters are created).

EXPECTED
  paper: 3.35 bits/dim on the CIFAR-10 test set (Kingma & Dhariwal 2018, Table 2; L=3 levels, K=32 steps,
         512 hidden channels, affine coupling, learned top prior, Adam 1e-3); test/bits_per_dim in metrics.jsonl.
  quick: held-out digits bits/dim and figures in workdir/figures (temperature samples, interpolations,
         3 -> 8 manipulation); see docs/flows.md for the figures measured here.
"""
from __future__ import annotations

import ml_collections

from jaxgen.train.presets import PRESETS, base_config, cadence, smoke  # noqa: F401  (PRESETS: this file's presets)


def image_flow_defaults(c, *, steps: int):
  """What the image-flow experiments share: batch 64, the cadence of the paper runs, the held-out bits/dim and
  figures, and the digits data, figures and evaluation batch of the offline presets."""
  c.batch_size = 64
  c.keep_checkpoints = 3
  c.num_samples = 64
  cadence(c, steps=steps, every=5000, sample_every=20_000, eval_every=50_000)
  c.evals = ("flow_heldout", "flow_figures")
  c.eval.batch_size = 500
  c.figures = dict(temperatures=(0.7, 1.0), manipulate=(3, 5))
  if c.preset in ("quick", "smoke"):
    c.data.update(name="digits", random_flip=False)
    c.figures = dict(temperatures=(0.5, 0.7, 1.0), manipulate=(3, 8))
    c.eval.batch_size = 128
  return c


def get_config(preset: str = "paper") -> ml_collections.ConfigDict:
  c = base_config("flow", preset or "paper")
  c.data.update(name="cifar10", random_flip=True)
  c.model = dict(kind="glow", num_levels=3, depth=32, hidden=512, num_blocks=0, coupling="affine", num_classes=0,
                 num_bins=256, conv_impl="auto")
  c.optim.update(learning_rate=1e-3, warmup_steps=7800, grad_clip=50.0, b1=0.9, b2=0.999, eps=1e-8,
                 ema_decay=0.999)
  image_flow_defaults(c, steps=1_500_000)
  if preset == "quick":
    # 8x8 digits: 2 levels (3 would leave a 1x1 top and factor half the pixels out after only K steps),
    # more steps per level, the logit preprocessing (digits pile up at 0 and 255, the edges of the shifted
    # range) and the data's 17 grey levels (num_bins; 256 bins would make the flow model 17 narrow spikes per
    # pixel); see docs/flows.md for the measured comparison.
    c.model.update(num_levels=2, depth=8, hidden=64, preprocessing="logit", logit_alpha=0.05, num_bins=17)
    c.optim.update(learning_rate=1e-3, warmup_steps=200, ema_decay=0.99)
    c.num_samples = 100
    cadence(c, steps=2000, every=500)
  elif preset == "smoke":
    c.model.update(num_levels=2, depth=1, hidden=8)
    smoke(c)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
