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
         nearer chrischute/real-nvp's 3.70 after ~20 epochs. test_bits_per_dim in metrics.jsonl.
  quick: held-out digits bits/dim and figures in workdir/figures (temperature samples, interpolations,
         3 -> 8 manipulation); see docs/flows.md for the figures measured here.
"""
from __future__ import annotations

import os

import ml_collections

from jaxgen.train.cli import PRESETS, base_config  # noqa: F401  (PRESETS: the presets this file offers)


def get_config(preset: str = "paper") -> ml_collections.ConfigDict:
  c = base_config(preset or "paper")
  c.data.update(name="cifar10", random_flip=True)
  c.model = dict(kind="realnvp", num_scales=3, couplings_per_scale=3, hidden=64, num_blocks=8, scale="tanh",
                 logit_alpha=0.05, num_classes=0, num_bins=256,
                 conv_impl="auto")
  c.optim.update(learning_rate=1e-3, warmup_steps=200, grad_clip=100.0, b1=0.9, b2=0.999, eps=1e-8,
                 weight_decay=5e-5, ema_decay=0.999)
  c.batch_size = 64
  c.num_train_steps = 500_000
  c.log_every = 100
  c.checkpoint_every = 5000
  c.keep_checkpoints = 3
  c.sample_every = 20_000
  c.num_samples = 64
  c.eval_every = 50_000
  c.eval_batch_size = 500
  c.figures = dict(temperatures=(0.7, 1.0), manipulate=(3, 5))
  if preset in ("quick", "smoke"):
    c.data.name, c.data.random_flip = "digits", False
    c.figures = dict(temperatures=(0.5, 0.7, 1.0), manipulate=(3, 8))
  if preset == "quick":
    # 8x8 digits: 2 scales; the checkerboard couplings run at full resolution, so the s/t network is the plain
    # conv-relu-conv (no residual blocks: 2.5x faster per step here than 1 block of 32 features, same loss at
    # step 100); the digits have 17 grey levels (num_bins), see docs/flows.md.
    c.model.update(num_scales=2, hidden=64, num_blocks=0, num_bins=17)
    c.optim.update(learning_rate=1e-3, warmup_steps=200, ema_decay=0.99)
    c.batch_size = 64
    c.num_train_steps = 2000
    c.log_every = 100
    c.checkpoint_every = 500
    c.sample_every = 500
    c.eval_every = 500
    c.eval_batch_size = 128
  elif preset == "smoke":
    c.model.update(num_scales=2, couplings_per_scale=1, hidden=8, num_blocks=0)
    c.optim.update(warmup_steps=2, ema_decay=0.9)
    c.batch_size = 16
    c.num_train_steps = 4
    c.log_every = 2
    c.checkpoint_every = 2
    c.keep_checkpoints = 2
    c.sample_every = 4
    c.num_samples = 16
    c.eval_every = 4
    c.eval_batch_size = 128
  return c


def main(argv=None):
  from jaxgen.flows.experiment import flow_main
  flow_main(os.path.abspath(__file__), "realnvp_cifar", argv=argv)


if __name__ == "__main__":
  main()
