r"""DDPM (Ho, Jain, Abbeel 2020) on CIFAR-10: the jaxgen flagship.

COMMAND (the paper's recipe; TFDS prepares CIFAR-10 on first use, which needs the network):
  python -m experiments.ddpm_cifar --workdir=workdirs/ddpm_cifar
Offline, on the bundled 8x8 digits (about 8 minutes on 2 CPU cores):
  python -m experiments.ddpm_cifar --config=experiments/ddpm_cifar.py:quick --workdir=workdirs/ddpm_quick
Class-conditional with classifier-free guidance, offline on digits (about 10 minutes on 2 CPU cores):
  python -m experiments.ddpm_cifar --config=experiments/ddpm_cifar.py:quick_cond --workdir=workdirs/ddpm_quick_cond
Offline at CIFAR-10's 32x32 RGB, on the procedural `shapes` (about 10 minutes on 2 CPU cores):
  python -m experiments.ddpm_cifar --config=experiments/ddpm_cifar.py:quick_shapes --workdir=workdirs/ddpm_shapes
CI check (under a minute):
  python -m experiments.ddpm_cifar --config=experiments/ddpm_cifar.py:smoke --workdir=/tmp/ddpm_smoke
Override any field: --config.batch_size=64 --config.optim.learning_rate=1e-4 --config.data.data_dir=/data/tfds
Rerunning a command on the same --workdir resumes from its latest checkpoint.

EXPECTED
  paper: after 800k steps, FID 3.17 and Inception score 9.46 (Ho et al. 2020, Table 1, EMA params,
         50k samples, fixed-large variance); the loss settles near 0.03.
         FID: python -m experiments.evaluate --workdir=workdirs/ddpm_cifar (the converted FID Inception weights,
         see docs/evaluation.md); the paper preset does not evaluate while it trains (sampling is costly).
  quick: recognisable digits in workdir/samples/step_<N>.png; at the end metrics.jsonl holds sample metrics of
         200 EMA samples in the digits feature space (samples/fid, precision, recall, ...); README has figures.
  quick_cond: one digit class per grid row; metrics.jsonl: samples/label_accuracy (the digits feature
         classifier agrees with the asked class), test/bits_per_dim (the variational bound), and
         test/classifier_accuracy (the model as a Bayes classifier) next to test/mlp_accuracy; docs/diffusion.md.
  quick_shapes: colours and layouts of the shapes in the grids; FID in the shapes feature space (README).
"""
from __future__ import annotations

import ml_collections

from jaxgen.diffusion.config import ddpm_config
from jaxgen.train.presets import PRESETS, cadence, smoke

PRESETS = PRESETS[:2] + ("quick_cond", "quick_shapes") + PRESETS[2:]   # paper, quick, quick_cond, quick_shapes, smoke
QUICK_SHAPES_STEPS = 1200


def get_config(preset: str = "paper") -> ml_collections.ConfigDict:
  # paper: the library's DDPM config (jaxgen.diffusion.config: the 35.7M U-Net, T=1000 linear betas, Adam 2e-4,
  # EMA 0.9999, batch 128, 800k steps; the converter of diffusers' weights starts from it too)
  c = ddpm_config(preset or "paper", PRESETS)

  if preset in ("quick", "quick_cond"):
    # Bundled digits (8x8x1) and a small U-Net; no dropout (tiny data, short run, and cheaper on CPU).
    c.data.update(name="digits", random_flip=False)
    c.model.update(ch=32, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(4,), dropout=0.0, num_groups=8)
    # T=500 with the paper's betas scaled by 1000/T keeps alpha_bar_T ~ 5e-5 (as in the paper) and halves
    # the sampling cost.
    c.diffusion.update(num_timesteps=500, beta_start=2e-4, beta_end=0.04)
    c.optim.update(learning_rate=1e-3, warmup_steps=200, ema_decay=0.995)
    c.batch_size = 64
    c.num_samples = 100
    cadence(c, steps=2000, every=500, sample_every=1000, eval_every=0)
    c.evals = ("sample_metrics",)
    c.eval.fid_samples = 200
    if preset == "quick_cond":
      # Class-conditional with classifier-free guidance (labels dropped to the null class 10% of the time);
      # the grids draw one class per row at guidance 1; at the end: sample metrics with the feature classifier's
      # agreement with the asked class, the bound in bits/dim, and the model as a classifier vs an MLP.
      c.model.num_classes = 10
      # Its grids and sample metrics use DDIM with 50 steps (a tenth of ancestral's cost, guided: 2 passes each).
      c.diffusion.update(label_dropout=0.1, guidance=1.0, sampler="ddim", sample_steps=50)
      c.evals = ("sample_metrics", "vlb", "diffusion_classifier")
  elif preset == "quick_shapes":
    # The offline 32x32 RGB benchmark (jaxgen.data.builders.shapes) at CIFAR-10's resolution, with a smaller
    # U-Net (32 channels, one block per level, attention at 8x8); FID in the shapes feature space.
    c.data.update(name="shapes", random_flip=False)
    c.model.update(ch=16, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(8,), dropout=0.0, num_groups=8)
    c.diffusion.update(num_timesteps=100, beta_start=1e-3, beta_end=0.2)
    c.optim.update(learning_rate=2e-3, warmup_steps=100, ema_decay=0.995)
    c.batch_size = 32
    c.num_samples = 64
    cadence(c, steps=QUICK_SHAPES_STEPS, every=500, sample_every=1000, eval_every=0)
    c.evals = ("sample_metrics",)
    c.eval.fid_samples = 100
  elif preset == "smoke":
    c.data.update(name="digits", random_flip=False)
    c.model.update(ch=8, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(8,), dropout=0.1, num_groups=4)
    c.diffusion.update(num_timesteps=50, beta_start=1e-3, beta_end=0.2)
    c.optim.update(learning_rate=1e-3)
    smoke(c)
    c.evals = ("sample_metrics",)
    c.baseline.steps = 20
    c.eval.classifier_timesteps = 5
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
