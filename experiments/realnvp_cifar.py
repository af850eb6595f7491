r"""RealNVP (Dinh, Sohl-Dickstein, Bengio 2016) on CIFAR-10: exact log-likelihood, bits/dim of held-out data.

COMMAND (the paper's recipe; TFDS prepares CIFAR-10 on first use, which needs the network):
  python -m experiments.realnvp_cifar --workdir=workdirs/realnvp_cifar
Offline, on the bundled 8x8 digits (a few minutes on 2 CPU cores):
  python -m experiments.realnvp_cifar --config=experiments/realnvp_cifar.py:quick --workdir=workdirs/realnvp_quick
CI check:
  python -m experiments.realnvp_cifar --config=experiments/realnvp_cifar.py:smoke --workdir=/tmp/realnvp_smoke
Rerunning a command on the same --workdir resumes.

EXPECTED
  paper: 3.49 bits/dim on the CIFAR-10 test set (Dinh et al. 2016, Table 1; multi-scale with 3 checkerboard
         and 3 channel affine couplings per scale, residual s/t networks of 8 blocks x 64 features, logit
         preprocessing with alpha = 0.05, Adam 1e-3, L2 5e-5, batch 64). Without the paper's batch norm, expect
         nearer chrischute/real-nvp's 3.70 after ~20 epochs. test/bits_per_dim in metrics.jsonl.
  quick: held-out digits bits/dim and figures in workdir/figures (temperature samples, interpolations,
         3 -> 8 manipulation); see docs/flows.md for the figures measured here.
"""
from __future__ import annotations

import ml_collections

from experiments.glow_cifar import image_flow_defaults
from jaxgen.train.presets import PRESETS, base_config, cadence, smoke  # noqa: F401  (PRESETS: this file's presets)


def get_config(preset: str = "paper") -> ml_collections.ConfigDict:
  c = base_config("flow", preset or "paper")
  c.data.update(name="cifar10", random_flip=True)
  c.model = dict(kind="realnvp", num_scales=3, couplings_per_scale=3, hidden=64, num_blocks=8, scale="tanh",
                 logit_alpha=0.05, num_classes=0, num_bins=256, conv_impl="auto")
  c.optim.update(learning_rate=1e-3, warmup_steps=200, grad_clip=100.0, b1=0.9, b2=0.999, eps=1e-8,
                 weight_decay=5e-5, ema_decay=0.999)
  image_flow_defaults(c, steps=500_000)
  if preset == "quick":
    # 8x8 digits: 2 scales; the checkerboard couplings run at full resolution, so the s/t network is the plain
    # conv-relu-conv (no residual blocks: 2.5x faster per step here than 1 block of 32 features, same loss at
    # step 100); the digits have 17 grey levels (num_bins), see docs/flows.md.
    c.model.update(num_scales=2, hidden=64, num_blocks=0, num_bins=17)
    c.optim.update(learning_rate=1e-3, warmup_steps=200, ema_decay=0.99)
    c.num_samples = 100
    cadence(c, steps=2000, every=500)
  elif preset == "smoke":
    c.model.update(num_scales=2, couplings_per_scale=1, hidden=8, num_blocks=0)
    smoke(c)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
