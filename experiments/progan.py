r"""Progressive GAN (Karras et al. 2018): G and D grow from 4x4 to the data's resolution while each new level
fades in; pixel norm, minibatch standard deviation, equalised learning rate, WGAN-GP with the drift term, EMA of G.

COMMAND (CIFAR-10 at 32x32: levels 4, 8, 16, 32; the paper's recipe: Adam lr 1e-3, beta1 0, beta2 0.99, eps
1e-8, WGAN-GP lambda 10, one D update per G update, drift 0.001, latent 512, 512 features per level, minibatch
stddev over groups of 4, G EMA 0.999, minibatch 16 and 800k images per fade-in and per stabilisation, i.e.
gan.phase_steps = 50,000 steps; TFDS prepares CIFAR-10 on first use, which needs the network):
  python -m experiments.progan --workdir=workdirs/progan_cifar
Quick, offline on the 32x32 `shapes` (~12 min on two cores with its evaluations; docs/gans.md):
  python -m experiments.progan --config=experiments/progan.py:quick --workdir=workdirs/progan_shapes
CI check (digits, 4x4 then 8x8, a checkpoint in the middle of the fade-in):
  python -m experiments.progan --config=experiments/progan.py:smoke --workdir=/tmp/progan_smoke

EXPECTED
  metrics.jsonl logs train/growth_level (0 at 4x4, p - 1 + alpha while level p fades in, then p); the sample
  grids samples/step_<N>.png show the phase the run is in at step N (a 4x4 phase draws blocks of 8x8 pixels).
  quick: grids every 400 steps, i.e. at the end of each phase (400: 4x4, 1200: 8x8, 2000: 16x16, then 32x32);
  `python -m jaxgen.gan.figures progan_phases --workdir=...` puts them side by side. FID / precision / recall of
  1000 EMA samples in the shapes feature space every 500 steps; measured here at step 3000: FID 3188, precision
  0.49, recall 0.36 (DCGAN quick_shapes: 2777 / 0.50 / 0.51; docs/gans.md). Earlier evaluations fall mid-fade or
  at a lower level (upsampled blocks against 32x32 reals) and are not comparable.
  paper: not run here (no CIFAR-10, no accelerator); the paper reports an unsupervised CIFAR-10 inception score of
  8.80 (not verified).
Scaled in `paper`: none of the recipe above; the paper's per-resolution minibatch sizes matter only above 128x128.
"""
from __future__ import annotations

from jaxgen.train.presets import base_config, cadence, smoke


def get_config(preset: str = "paper"):
  c = base_config("gan", preset or "paper")
  c.data.name = "cifar10"
  c.model = dict(kind="progan", latent_dim=512, g_channels=(512, 512, 512, 512), d_channels=(512, 512, 512, 512),
                 mbstd_group=4)
  c.gan = dict(loss="wgan", gp_weight=10.0, r1_gamma=0.0, truncation=0.0, drift=0.001, phase_steps=50_000)
  c.optim.update(learning_rate=1e-3, b1=0.0, b2=0.99, eps=1e-8, ema_decay=0.999)
  c.batch_size = 16
  cadence(c, steps=400_000, every=50_000, log_every=1000)
  c.evals = ("sample_metrics",)
  c.eval.fid_samples = 10_000
  if c.preset == "quick":
    # Narrower (64 features at 4x4 and 8x8, 32 at 16x16, 16 at 32x32), a 64-dim latent and batch 64 for a CPU;
    # 400 steps per phase: full resolution from step 2800, then 200 steps at it.
    c.data.name = "shapes"
    c.model.update(latent_dim=64, g_channels=(64, 64, 32, 16), d_channels=(64, 64, 32, 16))
    c.gan.phase_steps = 400
    c.optim.ema_warmup = True      # the EMA's ramp min(0.999, (1 + t) / (10 + t)): 0.999^400 would keep 67% of
    c.batch_size = 64              # the initial generator in the first phase's grid
    # D at 4x G's learning rate: with the paper's equal rates (800k images per phase there, 25.6k here) the
    # critic fell behind and G collapsed to one mean colour within the 4x4 phase (docs/gans.md)
    c.optim.groups = dict(discriminator=dict(learning_rate=4e-3))
    c.num_samples = 64
    cadence(c, steps=3000, every=500, log_every=100, sample_every=400)
    c.eval.fid_samples = 1000
  elif c.preset == "smoke":
    # digits (8x8: levels 4x4 and 8x8), 2 steps per phase: 4x4 on steps 0-1, the fade-in on 2-3 (the smoke
    # checkpoint at step 3 is in the middle of it), 8x8 from step 4
    c.data.name = "digits"
    c.model.update(latent_dim=8, g_channels=(16, 8), d_channels=(16, 8))
    c.gan.phase_steps = 2
    smoke(c)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
