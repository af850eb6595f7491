r"""StyleGAN2 (Karras et al. 2020) on CIFAR-10 with StyleGAN2-ADA's `cifar` config as far as it applies, and a
quick run on the offline 32x32 `shapes` (the GAN family with model.kind='stylegan': jaxgen.nn.stylegan).

paper (StyleGAN2-ADA, Karras et al. 2020, train.py --cfg=cifar, unconditional, without ADA's augmentation):
  32x32; 512 channels at every resolution (fmaps=1), z and w of 512, a 2-layer mapping network (map=2) with a
  0.01x learning rate (the optimizer group 'mapping': optim.groups.mapping.learning_rate = 0.01 * 0.0025);
  Adam lr 0.0025, betas (0, 0.99), eps 1e-8, batch 64, minibatch-stddev group 32; non-saturating loss; R1
  gamma 0.01, lazy every 16 steps (weighted by 16); no path-length regularisation, no style mixing and the
  'orig' (non-residual) discriminator, as the cifar config sets; EMA of G with a 500 kimg half-life (decay
  0.5^(64 / 500k) = 0.99991, ramped up: optim.ema_warmup); 100M images (1.56M steps).
  Not reproduced: the lazy-regularisation correction of Adam's lr and betas (c = 16/17), the FIR up/down
  filters (nearest / average pooling here), ADA, mixed precision, and the run itself (no CIFAR-10, no
  accelerator here). StyleGAN2-ADA reports FID ~11 (no augmentation) on CIFAR-10 unconditional.

COMMAND (TFDS prepares CIFAR-10 on first use, which needs the network):
  python -m experiments.stylegan --workdir=workdirs/stylegan_cifar
Quick, offline on `shapes` (the same data, steps and batch as experiments/dcgan_cifar.py:quick_shapes; style
mixing 0.9, residual D, 4-layer mapping network):
  python -m experiments.stylegan --config=experiments/stylegan.py:quick --workdir=workdirs/stylegan_quick
  python -m benchmarks.stylegan_figures --workdir=workdirs/stylegan_quick     # style mixing, truncation, noise
CI check:
  python -m experiments.stylegan --config=experiments/stylegan.py:smoke --workdir=/tmp/stylegan_smoke
Sampling with truncation in W (gan.truncation_psi; gan.truncation stays the z-truncation):
  python -m experiments.sample --workdir=workdirs/stylegan_quick --config.gan.truncation_psi=0.7
  (the metrics of truncated samples: the sampling option truncation_psi, e.g. --config.eval.sample_options)

EXPECTED
  samples/step_<N>.png from the EMA generator; metrics.jsonl with train/learning_rate/mapping = 0.01 x the
  generator's, and sample metrics of 1000 samples in the shapes feature space every 500 steps (quick);
  measured here at step 1500: FID 6933, precision 0.39, recall 0.17 (DCGAN quick_shapes at step 1500: 8014 /
  0.35 / 0.15) in 675 s with its evaluations; docs/gans.md has the curve and the figures.
"""
from __future__ import annotations

from jaxgen.train.presets import base_config, cadence, smoke

QUICK_STEPS = 1500
MAPPING_LR_MULTIPLIER = 0.01     # the papers' lr multiplier of the mapping network, as its group's learning rate


def _learning_rates(c, lr: float):
  c.optim.groups = dict(generator=dict(learning_rate=lr), discriminator=dict(learning_rate=lr),
                        mapping=dict(learning_rate=lr * MAPPING_LR_MULTIPLIER))


def get_config(preset: str = "paper"):
  c = base_config("gan", preset or "paper")
  c.data.name = "cifar10"
  c.model = dict(kind="stylegan", latent_dim=512, w_dim=512, mapping_layers=2, g_channels=(512, 512, 512, 512),
                 d_channels=(512, 512, 512, 512), style_mixing=0.0, d_residual=False, mbstd_group=32, num_classes=0)
  c.gan = dict(loss="non_saturating", gp_weight=0.0, r1_gamma=0.01, r1_every=16, truncation=0.0,
               truncation_psi=1.0, extra_groups=dict(mapping="generator/mapping"))
  c.optim.update(b1=0.0, b2=0.99, eps=1e-8, ema_decay=0.99991, ema_warmup=True)
  _learning_rates(c, 0.0025)
  c.batch_size = 64
  cadence(c, steps=100_000_000 // 64, every=20_000, log_every=1000, eval_every=50_000)
  c.evals = ("sample_metrics",)
  c.eval.fid_samples = 50_000       # FID-50k against the training set, in the Inception space
  if c.preset == "quick":
    # shapes with DCGAN quick_shapes' batch (64) and evaluation (FID / precision / recall of 1000 samples every
    # 500 steps) but half its steps: a StyleGAN step (two modulated 3x3 convs per resolution, a residual D) costs
    # several DCGAN steps, so 1500 steps is the ~8-10 minutes on 2 quiet cores. A narrow network (G 64-16
    # channels from 4x4 up, D 16-64 down), a 4-layer mapping network of 128, style mixing 0.9 (the paper's p),
    # the residual D with minibatch stddev over groups of 4; R1 gamma 0.05 lazily every 16 steps.
    c.data.name = "shapes"
    c.model.update(latent_dim=128, w_dim=128, mapping_layers=4, g_channels=(64, 64, 32, 16),
                   d_channels=(16, 32, 64, 64), style_mixing=0.9, d_residual=True, mbstd_group=4)
    c.gan.r1_gamma = 0.05
    c.optim.update(ema_decay=0.998)
    c.batch_size = 64
    c.num_samples = 64
    cadence(c, steps=QUICK_STEPS, every=500, log_every=100)
    c.eval.fid_samples = 1000
  elif c.preset == "smoke":
    c.data.name = "digits"          # 8x8: two resolutions (4x4, 8x8)
    c.model.update(latent_dim=8, w_dim=8, mapping_layers=2, g_channels=(8, 8), d_channels=(8, 8), style_mixing=0.9,
                   d_residual=True, mbstd_group=4)
    c.gan.update(r1_gamma=0.1, r1_every=2)
    smoke(c, num_samples=16)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
