"""The DDPM's default config: Ho et al. 2020's CIFAR-10 recipe as jaxgen config fields.

`ddpm_config(preset)` is what experiments/ddpm_cifar.py starts every preset from and what
jaxgen.diffusion.convert_diffusers builds a converted run's config from, so an installed jaxgen (without the
repository's experiments/) can convert weights. NumPy-free and JAX-free.
"""
from __future__ import annotations

from jaxgen.diffusion.options import DIFFUSION_DEFAULTS, MODEL_DEFAULTS
from jaxgen.train.presets import PRESETS, base_config, cadence


def ddpm_config(preset: str = "paper", presets=PRESETS):
  """The trainer's defaults (base_config('ddpm', preset)) with the paper's CIFAR-10 recipe: the 35.7M-parameter
  U-Net, T=1000 linear betas 1e-4 -> 0.02, fixed-large variance, Adam 2e-4 with 5000 warm-up steps, clipping
  at 1, EMA 0.9999, batch 128, 800k steps. A preset other than 'paper' only names the config here; the
  experiment changes the fields it needs."""
  c = base_config("ddpm", preset, presets)
  c.data.update(name="cifar10", random_flip=True)
  # The CIFAR-10 network of the paper: 35.7M parameters.
  c.model = dict(ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,), dropout=0.1,
                 num_groups=32, **MODEL_DEFAULTS)
  # Sampling defaults (sampler, sample_steps, ...) are what the grids and evaluations use; experiments.sample
  # and experiments.evaluate --sample_options override them per call.
  c.diffusion = dict(num_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                     variance="fixed_large", clip_x0=True, **DIFFUSION_DEFAULTS)
  c.optim.update(learning_rate=2e-4, warmup_steps=5000, grad_clip=1.0, ema_decay=0.9999)
  c.batch_size = 128
  c.keep_checkpoints = 3
  c.baseline = dict(steps=3000)         # the MLP that the 'diffusion_classifier' evaluation compares with
  c.eval.classifier_timesteps = 50      # timesteps of its ELBO estimate
  c.eval.classifier_score = "elbo"      # or 'eps_mse' (Li et al. 2023), jaxgen.diffusion.classifier
  c.num_samples = 64
  cadence(c, steps=800_000, every=5000, sample_every=20_000, eval_every=0)
  return c
