r"""DCGAN (Radford et al. 2015) on CIFAR-10 with the paper's recipe; class-conditional with conditional batch
norm in G and a projection discriminator (--config.model.num_classes=10).

COMMAND (Adam lr 2e-4, beta1 0.5, batch 128, batch norm in G, LeakyReLU 0.2 in D, N(0, 0.02) init;
TFDS prepares CIFAR-10 on first use, which needs the network):
  python -m experiments.dcgan_cifar --workdir=workdirs/dcgan_cifar
Quick, offline on the bundled 8x8 digits (a few minutes on 2 CPU cores), unconditional and conditional:
  python -m experiments.dcgan_cifar --config=experiments/dcgan_cifar.py:quick --workdir=workdirs/dcgan_quick
  python -m experiments.dcgan_cifar --config=experiments/dcgan_cifar.py:quick --config.model.num_classes=10 \
      --workdir=workdirs/dcgan_quick_cond
CI check:
  python -m experiments.dcgan_cifar --config=experiments/dcgan_cifar.py:smoke --workdir=/tmp/dcgan_smoke
Other options: --config.gan.loss=hinge|wgan|minimax --config.gan.gp_weight=10 --config.gan.r1_gamma=1
  --config.model.d_norm=spectral|batch|none --config.gan.truncation=1.0 (latent truncation when sampling).

EXPECTED
  samples/step_<N>.png from the EMA generator (conditional: one class per row). On digits, metrics.jsonl
  carries the digits probe's scores of 1000 samples (probe_mean_confidence, probe_confident_fraction,
  probe_classes_covered, and probe_label_agreement when conditional); docs/vae_gan.md has the figures
  measured here. paper: not run here (no CIFAR-10, no accelerator); DCGAN CIFAR-10 FID is typically ~30-40
  in later reimplementations (not verified).
"""
from __future__ import annotations

from jaxgen.train.cli import base_config, experiment_main


def get_config(preset: str = "paper"):
  c = base_config(preset or "paper")
  c.data.name = "cifar10"
  c.model = dict(kind="dcgan", latent_dim=100, g_channels=(512, 256, 128), d_channels=(128, 256, 512),
                 d_norm="batch", num_classes=0)
  c.gan = dict(loss="non_saturating", gp_weight=0.0, r1_gamma=0.0, truncation=0.0, g_learning_rate=2e-4,
               d_learning_rate=2e-4, b1=0.5, b2=0.999)
  c.optim.update(ema_decay=0.999)    # the trainer's EMA of the generator; the players' Adams are in c.gan
  c.batch_size = 128
  c.num_train_steps = 100_000
  c.log_every = 500
  c.checkpoint_every = 5000
  c.sample_every = 5000
  c.eval_every = 10_000
  if c.preset == "quick":
    c.data.name = "digits"
    c.model.update(latent_dim=32, g_channels=(128, 64), d_channels=(64, 128))
    c.batch_size = 64
    c.num_train_steps = 3000
    c.log_every = 200
    c.checkpoint_every = 1000
    c.sample_every = 1000
    c.eval_every = 1000
  elif c.preset == "smoke":
    c.data.name = "digits"
    c.model.update(latent_dim=8, g_channels=(16, 8), d_channels=(8, 16))
    c.optim.ema_decay = 0.9
    c.batch_size = 16
    c.num_train_steps = 6
    c.log_every = 2
    c.checkpoint_every = 3
    c.sample_every = 6
    c.eval_every = 6
  return c


def main(argv=None):
  from jaxgen.gan.build import make_digits_probe_eval_fn, make_gan, validate_gan_config
  experiment_main(__file__, "dcgan_cifar", validate=validate_gan_config, build_family=make_gan,
                  eval_fn_factory=make_digits_probe_eval_fn, argv=argv)


if __name__ == "__main__":
  main()
