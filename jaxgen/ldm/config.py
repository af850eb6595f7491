"""The latent-diffusion first stage's default config: the paper's KL-f4 autoencoder recipe as jaxgen config fields.

`ldm_autoencoder_config(preset)` is what experiments/ldm_autoencoder.py starts every preset from and what
jaxgen.ldm.convert_diffusers builds a converted run's config from, so an installed jaxgen (without the
repository's experiments/) can convert weights and the two cannot drift. NumPy-free and JAX-free.
"""
from __future__ import annotations

from jaxgen.train.presets import PRESETS, base_config, cadence


def ldm_autoencoder_config(preset: str = "paper", presets=PRESETS):
  """The trainer's defaults (base_config('ldm_autoencoder', preset)) with the paper's KL-f4 first stage on
  CIFAR-10: block_out_channels (128, 256, 512), layers_per_block 2, latent_channels 3, attention in the middle
  block only, GroupNorm of 32 groups; L1 reconstruction plus 1e-6 * KL; Adam (0.5, 0.9) at 4.5e-6 * batch 64,
  EMA 0.999, 100k steps; the 'ldm_reconstruction' and 'latent_scale' evaluations. A preset other than 'paper'
  only names the config here; the experiment changes the fields it needs."""
  c = base_config("ldm_autoencoder", preset, presets)
  c.data.update(name="cifar10", random_flip=True)
  c.model = dict(block_out_channels=(128, 256, 512), layers_per_block=2, latent_channels=3, norm_num_groups=32,
                 mid_block_add_attention=True)
  c.ldm = dict(reconstruction="l1", kl_weight=1e-6)
  c.batch_size = 64
  c.optim.update(learning_rate=4.5e-6 * c.batch_size, b1=0.5, b2=0.9, ema_decay=0.999)
  c.evals = ("ldm_reconstruction", "latent_scale")
  c.eval.update(batch_size=250, reconstruction_examples=1000, latent_scale_examples=1000)
  c.num_samples = 0                  # the family draws no samples
  cadence(c, steps=100_000, every=10_000, log_every=500, sample_every=0)
  return c
