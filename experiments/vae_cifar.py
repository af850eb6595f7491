r"""Convolutional VAE with a discretised logistic decoder on CIFAR-10, reporting held-out ELBO / IWAE bits/dim.

COMMAND (TFDS prepares CIFAR-10 on first use, which needs the network):
  python -m experiments.vae_cifar --workdir=workdirs/vae_cifar
Offline quick run on the bundled 8x8 digits (conv VAE, a few minutes on 2 CPU cores):
  python -m experiments.vae_cifar --config=experiments/vae_cifar.py:quick --workdir=workdirs/vae_cifar_quick
CI check:
  python -m experiments.vae_cifar --config=experiments/vae_cifar.py:smoke --workdir=/tmp/vae_cifar_smoke

EXPECTED
  paper: a plain single-latent-layer VAE is far from the state of the art on CIFAR-10; expect roughly 4.5-5.5
         8-bit bits/dim (not measured here: no CIFAR-10 and no accelerator on the development machine).
  quick: as experiments/vae_digits.py:quick (test/elbo_bits_per_dim, test/iwae<k>_bits_per_dim in
         metrics.jsonl, figures/).
"""
from __future__ import annotations

from jaxgen.train.presets import base_config, cadence, smoke


def get_config(preset: str = "paper"):
  c = base_config("vae", preset or "paper")
  c.data.name = "cifar10"
  c.model = dict(kind="conv", hidden=(512,), channels=(64, 128, 256), latent_dim=128, likelihood="logistic",
                 beta=1.0)
  c.eval.update(num_iwae_samples=1000, iwae_chunk=50, batch_size=200)
  c.evals = ("vae_heldout", "vae_figures")
  c.optim.update(learning_rate=1e-3, ema_decay=0.9999, grad_clip=1.0)
  c.batch_size = 128
  c.num_samples = 64
  cadence(c, steps=200_000, every=5000, log_every=500, sample_every=10_000, eval_every=50_000)
  if c.preset == "quick":
    c.data.name = "digits"
    c.model.update(channels=(32, 64), latent_dim=16)
    c.optim.update(ema_decay=0.999)
    c.batch_size = 100
    c.num_samples = 100
    c.evals = ("vae_heldout", "vae_figures", "sample_metrics")
    cadence(c, steps=4000, every=1000, log_every=200, sample_every=2000, eval_every=2000)
  elif c.preset == "smoke":
    c.data.name = "digits"
    c.model.update(channels=(8,), latent_dim=4)
    c.eval.update(num_iwae_samples=8, iwae_chunk=4)
    c.evals = ("vae_heldout", "vae_figures", "sample_metrics")
    smoke(c)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
