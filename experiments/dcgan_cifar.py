r"""DCGAN (Radford et al. 2015) on CIFAR-10 with the paper's recipe; class-conditional with conditional batch
norm in G and a projection discriminator (--config.model.num_classes=10).

COMMAND (Adam lr 2e-4 for each player (optim.groups.generator / .discriminator), beta1 0.5, batch 128, batch norm in G, LeakyReLU 0.2 in D, N(0, 0.02) init;
TFDS prepares CIFAR-10 on first use, which needs the network):
  python -m experiments.dcgan_cifar --workdir=workdirs/dcgan_cifar
Quick, offline on the bundled 8x8 digits (a few minutes on 2 CPU cores), unconditional and conditional:
  python -m experiments.dcgan_cifar --config=experiments/dcgan_cifar.py:quick --workdir=workdirs/dcgan_quick
  python -m experiments.dcgan_cifar --config=experiments/dcgan_cifar.py:quick --config.model.num_classes=10 \
      --workdir=workdirs/dcgan_quick_cond
Quick, offline on the 32x32 `shapes` (the reference row for the other GANs, docs/gans.md), unconditional
and conditional on the first object's kind:
  python -m experiments.dcgan_cifar --config=experiments/dcgan_cifar.py:quick_shapes --workdir=workdirs/dcgan_shapes
  python -m experiments.dcgan_cifar --config=experiments/dcgan_cifar.py:quick_shapes_cond \
      --workdir=workdirs/dcgan_shapes_cond
CI check:
  python -m experiments.dcgan_cifar --config=experiments/dcgan_cifar.py:smoke --workdir=/tmp/dcgan_smoke
Other options: --config.gan.loss=hinge|wgan|minimax --config.gan.gp_weight=10 --config.gan.r1_gamma=1
  --config.model.d_norm=spectral|batch|none --config.gan.truncation=1.0 (latent truncation when sampling).

EXPECTED
  samples/step_<N>.png from the EMA generator (conditional: one class per row). On digits, metrics.jsonl
  carries sample metrics of 1000 samples in the digits feature space (samples/fid, kid, precision, recall,
  inception_score, classes_covered, and samples/label_accuracy when conditional); docs/vae_gan.md and the README
  have the figures measured here. paper: not run here (no CIFAR-10, no accelerator); DCGAN CIFAR-10 FID is typically ~30-40
  in later reimplementations (not verified).
"""
from __future__ import annotations

from jaxgen.train.presets import PRESETS, base_config, cadence, smoke

PRESETS = PRESETS[:2] + ("quick_shapes", "quick_shapes_cond") + PRESETS[2:]
QUICK_SHAPES_STEPS = 3000


def get_config(preset: str = "paper"):
  c = base_config("gan", preset or "paper", PRESETS)
  c.data.name = "cifar10"
  c.model = dict(kind="dcgan", latent_dim=100, g_channels=(512, 256, 128), d_channels=(128, 256, 512),
                 d_norm="batch", num_classes=0)
  c.gan = dict(loss="non_saturating", gp_weight=0.0, r1_gamma=0.0, truncation=0.0)
  # The players are the trainer's two parameter groups: Adam b1 0.5 for both, each its own learning rate.
  c.optim.update(b1=0.5, b2=0.999, ema_decay=0.999,
                 groups=dict(generator=dict(learning_rate=2e-4), discriminator=dict(learning_rate=2e-4)))
  c.batch_size = 128
  cadence(c, steps=100_000, every=5000, log_every=500, eval_every=10_000)
  c.evals = ("sample_metrics",)     # FID etc. of 10k samples in the Inception space (skipped, with a warning, without
  c.eval.fid_samples = 10_000       # the converted Inception weights)
  if c.preset == "quick":
    c.data.name = "digits"
    c.model.update(latent_dim=32, g_channels=(128, 64), d_channels=(64, 128))
    c.batch_size = 64
    c.evals = ("sample_metrics",)
    cadence(c, steps=3000, every=1000, log_every=200)
  elif c.preset in ("quick_shapes", "quick_shapes_cond"):
    # The same-data, same-budget reference row for every GAN on the offline 32x32 `shapes`: a narrower DCGAN
    # (three upsamplings from 4x4), FID / precision / recall of 1000 samples in the shapes feature space every
    # 500 steps (the curve the other GANs are read against at equal steps and equal wall time).
    c.data.name = "shapes"
    c.model.update(latent_dim=64, g_channels=(128, 64, 32), d_channels=(32, 64, 128))
    c.batch_size = 64
    c.num_samples = 64
    cadence(c, steps=QUICK_SHAPES_STEPS, every=500, log_every=100)
    c.eval.fid_samples = 1000
    if c.preset == "quick_shapes_cond":
      # Conditional on the first object's kind (the data set's label): conditional BN in G, projection D;
      # samples/label_accuracy = some quadrant shows the asked kind (jaxgen.eval.agreement).
      c.model.num_classes = 5
      c.num_samples = 60
  elif c.preset == "smoke":
    c.data.name = "digits"
    c.model.update(latent_dim=8, g_channels=(16, 8), d_channels=(8, 16))
    c.evals = ("sample_metrics",)
    smoke(c, num_samples=20)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
