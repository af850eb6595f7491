r"""Latent diffusion's second stage (Rombach et al. 2022): a DDPM on the latents of a frozen first-stage run.

The first stage is an `ldm_autoencoder` run (experiments/ldm_autoencoder.py, or a converted diffusers
AutoencoderKL: python -m jaxgen.ldm.convert_diffusers); this run restores it with load_run's checks into the
'frozen' group (config.codec: kind='frozen_autoencoder', workdir=<its workdir>, scale='auto' = the stored
1 / std of its latents) and trains the DDPM family (jaxgen.diffusion: schedules, parameterisations, losses,
ancestral / DDIM samplers, guidance, EMA) on its latents; samples, grids and evaluations are decoded to pixels.

COMMAND (CIFAR-10, both stages; TFDS prepares CIFAR-10 on first use):
  python -m experiments.ldm_autoencoder --workdir=workdirs/ldm_ae_cifar
  python -m experiments.ldm --workdir=workdirs/ldm_cifar --config.codec.workdir=workdirs/ldm_ae_cifar
Offline on the procedural 32x32 `shapes` (both stages, about 15 minutes on 2 CPU cores):
  python -m experiments.ldm_autoencoder --config=experiments/ldm_autoencoder.py:quick --workdir=workdirs/ldm_ae_shapes
  python -m experiments.ldm --config=experiments/ldm.py:quick --workdir=workdirs/ldm_shapes \
      --config.codec.workdir=workdirs/ldm_ae_shapes
  (quick_class: conditioned on the first object's kind; quick_text: on the caption, by cross-attention)
  python -m experiments.sample --workdir=workdirs/ldm_text --caption="a small red circle above a large blue square"
CI check (any first stage trained on digits, e.g. ldm_autoencoder:smoke):
  python -m experiments.ldm --config=experiments/ldm.py:smoke --workdir=/tmp/ldm_smoke --config.codec.workdir=...

paper: the paper's LDM-4 recipe on CIFAR-10's 32x32 (latents 8x8x3 of the KL-f4 first stage): its
  unconditional U-Net (model_channels 224, channel_mult (1, 2, 3, 4) cut to (1, 2, 3) for an 8x8 input, 2 residual
  blocks, attention at 4x4 and 2x2 with 32-channel heads approximated by the DDPM's single-head blocks),
  T = 1000 linear betas 0.0015 -> 0.0195 (the paper's, on sqrt scale there; linear here), eps-prediction,
  the training latents cached once (codec.cache), Adam 2e-6 * batch (the paper's base lr scaled by its batch, 1.28e-4 at batch 64), EMA 0.9999,
  400k steps; DDIM with 200 steps for grids (the paper's sampler). What differs: CIFAR-10 instead of the paper's
  CelebA / FFHQ / LSUN / ImageNet at 256x256, the sqrt-linear schedule replaced by the linear one.
quick: `shapes`, an unconditional U-Net of 32 channels (1, 2) on the 16x16x4 latents of ldm_autoencoder:quick
  (f = 2), attention at 8x8, T = 100, v-prediction, batch 8, 4200 steps (the FLOPs of the pixel DDPM's
  quick_shapes), EMA 0.99875; DDIM 50-step grids; sample metrics in the shapes feature space (measured here:
  FID 1416 / 1517, precision 0.59 / 0.59 on seeds 0 / 1, about 4 min of training).
quick_class / quick_text: the same at batch 32 (quick_class: 1050 steps, the same images), conditioned on the
  first object's kind (class embedding) / on the caption (a 2-layer transformer text encoder of width 64 trained
  jointly; cross-attention after every attention block),
  with condition dropout 0.1 and guidance 3 in grids and evaluations; quick_text trains 1500 steps.
smoke: digits, a one-level U-Net on the latents of ldm_autoencoder:smoke, 6 steps.

EXPECTED
  quick: grids of shapes with outlines (decoded by the first stage), test sample metrics in the shapes space;
  quick_text: samples showing the asked kind and colour (samples/attr_kind, samples/attr_colour beside their
  _chance). Figures: docs/latent_diffusion.md.
"""
from __future__ import annotations

import ml_collections

from jaxgen.diffusion.config import ddpm_config
from jaxgen.train.presets import PRESETS, cadence, smoke

PRESETS = PRESETS[:2] + ("quick_class", "quick_text") + PRESETS[2:]    # paper, quick, quick_class, quick_text, smoke
QUICK_STEPS = 4200          # at batch 8: at most the FLOPs of ddpm_cifar:quick_shapes (benchmarks/ldm_vs_pixel.py)
QUICK_BATCH = 8
QUICK_CLASS_STEPS = 1050    # quick_class at batch 32: the same FLOPs
QUICK_TEXT_STEPS = 1500
# The experiments/ldm_autoencoder.py preset whose run each preset's codec.workdir expects.
FIRST_STAGE = {"paper": "paper", "quick": "quick", "quick_class": "quick", "quick_text": "quick", "smoke": "smoke"}


def get_config(preset: str = "paper") -> ml_collections.ConfigDict:
  c = ddpm_config(preset or "paper", PRESETS)
  # cache: the training latents encoded once (jaxgen.ldm.cache), faster from ~1000 steps on at this size
  c.codec = dict(kind="frozen_autoencoder", workdir="", scale="auto", cache=True)
  c.data.update(name="cifar10", random_flip=False)   # flipping would change the latents of the cached first stage
  c.model.update(ch=224, ch_mult=(1, 2, 3), num_res_blocks=2, attn_resolutions=(4, 2), dropout=0.0, num_groups=32)
  c.diffusion.update(num_timesteps=1000, beta_start=0.0015, beta_end=0.0195, sampler="ddim", sample_steps=200)
  c.batch_size = 64
  c.optim.update(learning_rate=2e-6 * c.batch_size, warmup_steps=1000, grad_clip=1.0, ema_decay=0.9999)
  cadence(c, steps=400_000, every=10_000, sample_every=20_000, eval_every=0)

  if preset in ("quick", "quick_class", "quick_text"):
    c.data.update(name="shapes")
    c.codec.cache = False    # break-even at this length: encoding the split once costs what 1000 steps save
    c.model.update(ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,), num_groups=8)
    # v-prediction: latents are unbounded (no clipping of x0 as for pixels), and with eps-prediction DDIM's x0
    # estimates at high noise (alpha_bar_T ~ 1e-5 at T = 100) are too far off: measured FID 13902 vs 1961 with v
    # (both at batch 32)
    c.diffusion.update(num_timesteps=100, beta_start=1e-3, beta_end=0.2, sample_steps=50, prediction="v")
    c.optim.update(learning_rate=1e-3, warmup_steps=100, ema_decay=0.995)
    c.batch_size = 32
    c.num_samples = 64
    cadence(c, steps=QUICK_CLASS_STEPS, every=1000, sample_every=1000, eval_every=0)
    if preset == "quick":
      # the same images (and FLOPs) in 4x the steps of a quarter of the batch, the EMA's half-life in images
      # kept: FID 1416 / 1517 against 1961 / 2223 at batch 32 (seeds 0 / 1; docs/latent_diffusion.md)
      c.batch_size = QUICK_BATCH
      c.optim.ema_decay = 0.99875
      cadence(c, steps=QUICK_STEPS, every=1000, sample_every=1000, eval_every=0)
    c.evals = ("sample_metrics",)
    c.eval.fid_samples = 500
    if preset == "quick_class":
      c.model.num_classes = 5
    if preset == "quick_text":
      cadence(c, steps=QUICK_TEXT_STEPS, every=500, sample_every=500, eval_every=0)
      c.model.update(text_vocab=24, text_max_len=24, text_width=64, text_depth=2, text_heads=4, cross_attn_heads=4,
                     attn_resolutions=(16, 8))
    if preset in ("quick_class", "quick_text"):
      c.diffusion.update(label_dropout=0.1, guidance=3.0)
  elif preset == "smoke":
    c.data.update(name="digits")
    c.codec.cache = False
    c.model.update(ch=8, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(), dropout=0.0, num_groups=4)
    c.diffusion.update(num_timesteps=20, beta_start=1e-3, beta_end=0.2, sample_steps=5)
    c.optim.update(learning_rate=1e-3)
    smoke(c)
    c.evals = ("sample_metrics",)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
