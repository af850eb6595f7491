r"""Coupled GANs (Liu & Tuzel 2016): one latent, two domains, no paired data; the GAN family with model.kind='cogan'.

Two generators whose first layers are tied (one parameter leaf each, its gradient the sum of both domains'), and
two discriminators whose last layers are tied (jaxgen.nn.cogan); domain A's and domain B's training images come
from disjoint halves of the training split in independent orders, never paired (jaxgen.gan.cogan). A sample is a
pair side by side, (H, 2W, C): the sample grids show pairs.

COMMAND (the paper's digits recipe as far as it maps: digits and their negatives (MNIST is not offline here: the
8x8 `digits`), Adam lr 2e-4 for each player, beta1 0.5, batch 128, a DCGAN-style convolutional pair scaled to 8x8
(theirs is for 28x28: G 1024-512-256-128 transposed convolutions with all but the last layer tied, D 20-50-500 with
max pooling and the first layer untied; here G 512-256 then the untied output layer, D 128-256 with the first
layer untied), 25,000 steps):
  python -m experiments.cogan --workdir=workdirs/cogan
Quick, offline (digits vs negatives; a few minutes on 2 CPU cores):
  python -m experiments.cogan --config=experiments/cogan.py:quick --workdir=workdirs/cogan_quick
Quick, offline on `shapes` filled vs outlined (3000 steps of 64 pairs, comparable with
experiments/dcgan_cifar.py:quick_shapes):
  python -m experiments.cogan --config=experiments/cogan.py:quick_shapes --workdir=workdirs/cogan_shapes
CI check:
  python -m experiments.cogan --config=experiments/cogan.py:smoke --workdir=/tmp/cogan_smoke
Other options: --config.cogan.domain_b=negative|shapes_outlined, --config.model.g_untied=K (the last K
generator layers per domain), --config.model.d_untied=K (the first K discriminator layers per domain),
--config.gan.loss=hinge|wgan|minimax, --config.model.d_norm=batch|spectral|none.

EXPECTED
  samples/step_<N>.png: pairs (domain A left, domain B right) from the EMA generator. metrics.jsonl carries the
  'pair_agreement' evaluation every eval_every steps: samples/pair_agreement (both halves show the same digit /
  the same scene) against samples/pair_agreement_chance (random pairs), and FID / KID / precision / recall of
  each half in its own domain (samples/a/*, samples/b/*). Measured here: docs/gans_cogan_draft.md.
"""
from __future__ import annotations

from jaxgen.train.presets import PRESETS, base_config, cadence, smoke

PRESETS = PRESETS[:2] + ("quick_shapes",) + PRESETS[2:]


def get_config(preset: str = "paper"):
  c = base_config("gan", preset or "paper", PRESETS)
  c.data.name = "digits"
  c.cogan = dict(domain_b="negative")
  c.model = dict(kind="cogan", latent_dim=100, g_channels=(512, 256), d_channels=(128, 256), d_norm="none",
                 num_classes=0, g_untied=1, d_untied=1)
  c.gan = dict(loss="non_saturating", gp_weight=0.0, r1_gamma=0.0, truncation=0.0)
  c.optim.update(b1=0.5, b2=0.999, ema_decay=0.999,
                 groups=dict(generator=dict(learning_rate=2e-4), discriminator=dict(learning_rate=2e-4)))
  c.batch_size = 128
  c.num_samples = 64
  cadence(c, steps=25_000, every=2500, log_every=500, eval_every=2500)
  c.evals = ("pair_agreement",)
  c.eval.fid_samples = 1000
  if c.preset in ("quick", "quick_shapes"):
    # The EMA's warm-up ramp, decay min(0.999, (1 + t) / (10 + t)): over a run of 2000-3000 steps a plain 0.999
    # EMA still holds 0.999^2000 = 14% of the initial generator (measured on quick: EMA FID 650 against sharp
    # pairs from the trained weights).
    c.optim.ema_warmup = True
  if c.preset == "quick":
    c.model.update(latent_dim=32, g_channels=(128, 64), d_channels=(64, 128))
    c.batch_size = 64
    cadence(c, steps=2000, every=500, log_every=100)
  elif c.preset == "quick_shapes":
    # The DCGAN reference row's budget (experiments/dcgan_cifar.py:quick_shapes): 3000 steps of 64 (here 64
    # pairs), its widths and batch-norm D, FID / precision / recall of 1000 samples per domain every 500 steps.
    # The last two generator layers (16x16 and 32x32) are per domain: filled and outlined differ at the edges.
    c.data.name = "shapes"
    c.cogan.domain_b = "shapes_outlined"
    c.model.update(latent_dim=64, g_channels=(128, 64, 32), d_channels=(32, 64, 128), g_untied=2, d_norm="batch")
    c.batch_size = 64
    cadence(c, steps=3000, every=500, log_every=100)
  elif c.preset == "smoke":
    c.model.update(latent_dim=8, g_channels=(16, 8), d_channels=(8, 16))
    smoke(c, num_samples=16)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
