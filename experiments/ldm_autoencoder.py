r"""The first stage of latent diffusion (Rombach et al. 2022): the KL-regularised autoencoder, trained on its own.

COMMAND (the paper's KL-f4 autoencoder applied to CIFAR-10; TFDS prepares CIFAR-10 on first use):
  python -m experiments.ldm_autoencoder --workdir=workdirs/ldm_autoencoder
Offline on the procedural 32x32 `shapes`, f = 2 (about 7 minutes on 2 CPU cores; quick_f4: f = 4):
  python -m experiments.ldm_autoencoder --config=experiments/ldm_autoencoder.py:quick --workdir=workdirs/ldm_ae_shapes
CI check:
  python -m experiments.ldm_autoencoder --config=experiments/ldm_autoencoder.py:smoke --workdir=/tmp/ldm_ae_smoke
Then a DDPM on its latents: config.codec = dict(kind='frozen_autoencoder', workdir=<this workdir>, scale='auto')
(docs/latent_diffusion.md).

paper: the paper's KL-f4 first stage (its models/first_stage_models/kl-f4 config): block_out_channels
  (128, 256, 512) (ch 128, ch_mult (1, 2, 4)), layers_per_block 2, latent_channels 3, attention in the middle
  block only, GroupNorm of 32 groups; L1 reconstruction plus kl_weight 1e-6 * KL; Adam with betas (0.5, 0.9) and
  the paper's base learning rate 4.5e-6 scaled by the batch size as its code does (lr = batch * 4.5e-6 = 2.88e-4
  at batch 64). What differs: CIFAR-10's 32x32 images (latents 8x8x3) instead of the paper's 256x256 data; no
  LPIPS term and no patch discriminator (the paper's adversarial loss starts after 50k steps; not implemented
  here, docs/latent_diffusion.md); 100k steps (the paper trains until convergence); EMA 0.999 of the params for
  evaluation (the paper's first stage keeps none).
quick: `shapes`, f = 2 with block_out_channels (16, 32), one ResNet block per level, 8 groups, latents 16x16x4;
  L1, kl_weight 1e-6; Adam 1e-3, batch 32, 800 steps. At f = 4 the shapes (8 or 14 px across) lose their
  outlines in so short a run (quick_f4: block_out_channels (16, 32, 32), latents 8x8x3; held-out reconstructions
  FID 2076 and kind recognised 0.55, against 580 and 0.93 at f = 2; docs/latent_diffusion.md).
smoke: the bundled 8x8 digits, f = 2, widths 4, no attention, 6 steps (tests and CI).

EXPECTED
  metrics.jsonl: train/psnr rising, and at each evaluation test/psnr of held-out reconstructions; on shapes and
  digits test/recon_fid, test/recon_precision, ... (reconstructions vs the training split in the offline feature
  space) and test/recon_attr_* / test/recon_label_accuracy (the attribute network on the reconstructions agrees
  with the originals' attributes) beside test/real_* (the same network on the originals). At the end
  workdir/latent_scale.json holds 1 / std of the training latents (the 'latent_scale' evaluation).
"""
from __future__ import annotations

from jaxgen.ldm.config import ldm_autoencoder_config
from jaxgen.train.presets import cadence, smoke


PRESETS = ("paper", "quick", "quick_f4", "smoke")


def get_config(preset: str = "paper"):
  # paper: the library's first-stage config (jaxgen.ldm.config: the KL-f4 autoencoder on CIFAR-10, L1 + 1e-6 KL,
  # Adam (0.5, 0.9) at 4.5e-6 * batch, EMA 0.999, 100k steps; the converter of diffusers' weights starts from it too)
  c = ldm_autoencoder_config(preset or "paper", PRESETS)
  if c.preset in ("quick", "quick_f4"):
    c.data.update(name="shapes", random_flip=False)
    # quick: f = 2 (latents 16x16x4), what keeps the outlines of shapes 8 px across in a short run; quick_f4:
    # the paper's f = 4 (latents 8x8x3), which blurs them (docs/latent_diffusion.md)
    if c.preset == "quick":
      c.model.update(block_out_channels=(16, 32), layers_per_block=1, latent_channels=4, norm_num_groups=8)
    else:
      c.model.update(block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=8)
    c.optim.update(learning_rate=1e-3, warmup_steps=100, ema_decay=0.995)
    c.batch_size = 32
    cadence(c, steps=800, every=400, log_every=100, sample_every=0, eval_every=0)
  elif c.preset == "smoke":
    c.data.update(name="digits", random_flip=False)
    c.model.update(block_out_channels=(4, 4), layers_per_block=1, latent_channels=2, norm_num_groups=2,
                   mid_block_add_attention=False)
    c.eval.update(batch_size=100, reconstruction_examples=100, latent_scale_examples=64)
    smoke(c, sample_every=0, num_samples=0)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
