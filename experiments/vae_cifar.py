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
  quick: as experiments/vae_digits.py:quick (test_elbo_bpd, test_iwae<k>_bpd in metrics.jsonl, figures/).
"""
from __future__ import annotations

from jaxgen.train.cli import base_config, experiment_main


def get_config(preset: str = "paper"):
  c = base_config(preset or "paper")
  c.data.name = "cifar10"
  c.model = dict(kind="conv", hidden=(512,), channels=(64, 128, 256), latent_dim=128, likelihood="logistic",
                 beta=1.0)
  c.eval = dict(num_iwae_samples=1000, iwae_chunk=50, batch_size=200)
  c.optim.update(learning_rate=1e-3, ema_decay=0.9999, grad_clip=1.0)
  c.batch_size = 128
  c.num_train_steps = 200_000
  c.log_every = 500
  c.checkpoint_every = 5000
  c.sample_every = 10_000
  c.num_samples = 64
  c.eval_every = 50_000
  if c.preset == "quick":
    c.data.name = "digits"
    c.model.update(channels=(32, 64), latent_dim=16)
    c.optim.update(ema_decay=0.999)
    c.batch_size = 100
    c.num_train_steps = 4000
    c.log_every = 200
    c.checkpoint_every = 1000
    c.sample_every = 2000
    c.num_samples = 100
    c.eval_every = 2000
  elif c.preset == "smoke":
    c.data.name = "digits"
    c.model.update(channels=(8,), latent_dim=4)
    c.eval.update(num_iwae_samples=8, iwae_chunk=4)
    c.optim.ema_decay = 0.9
    c.batch_size = 16
    c.num_train_steps = 6
    c.log_every = 2
    c.checkpoint_every = 3
    c.sample_every = 6
    c.num_samples = 16
    c.eval_every = 6
  return c


def main(argv=None):
  from jaxgen.vae.build import make_vae, make_vae_eval_fn, validate_vae_config
  experiment_main(__file__, "vae_cifar", validate=validate_vae_config, build_family=make_vae,
                  eval_fn_factory=make_vae_eval_fn, argv=argv)


if __name__ == "__main__":
  main()
