r"""Generative Adversarial Text to Image Synthesis (Reed et al. 2016): a DCGAN conditioned on a caption's text
embedding, with the matching-aware discriminator (GAN-CLS) and manifold interpolation (GAN-INT), on the `shapes`
captions.

The GAN family (jaxgen.gan) with config.condition = dict(kind='clip_text', workdir=<a CLIP run>): the frozen
CLIP's text tower embeds each caption inside the step (jaxgen.conditioners.ClipTextCondition, the same encoder as
unCLIP's prior; CLIP is a frozen part: never trained, not saved with the run, fingerprinted); both players compress
the embedding to model.text_dim with a dense layer and LeakyReLU (jaxgen.nn.text_gan: concatenated with z in G,
replicated over D's 4x4 map and depth-concatenated before a 1x1 convolution and the 4x4 logit).
gan.matching_aware: D also rejects real images with mismatched captions (the next caption of the batch that
differs); gan.interpolation: G is also trained on interpolated caption embeddings (gan.interpolation_beta = 0.5).
Both on is the paper's GAN-INT-CLS; --config.gan.matching_aware=False / --config.gan.interpolation=False give the
three other rows.

There is no default CLIP run: condition.workdir must name one (the validator refuses '' in one line); CLIP_PRESET
says which experiments/clip_shapes.py preset each preset is meant for.

COMMAND (shapes, offline; CLIP first):
  python -m experiments.clip_shapes --config=experiments/clip_shapes.py:quick --workdir=workdirs/clip_quick
  python -m experiments.text2image_gan --config=experiments/text2image_gan.py:quick \
      --workdir=workdirs/textgan_quick --config.condition.workdir=workdirs/clip_quick
  python -m experiments.sample --workdir=workdirs/textgan_quick --num=16 \
      --caption="a small red circle above a large blue square"
CI check: the smoke preset on a clip_shapes:smoke run (tests/gan/test_text_gan.py).

paper: Reed et al.'s recipe (64x64 CUB / Oxford-102 / MS-COCO, a char-CNN-RNN text encoder pre-trained on the
  captions giving a 1024-d embedding compressed to 128, z of 100, DCGAN players with batch norm, Adam lr 2e-4 b1
  0.5, batch 64, 600 epochs, GAN-INT beta 0.5) scaled to the 32x32 `shapes`: the char-CNN-RNN is replaced by the
  text tower of a CLIP trained on the shapes captions (clip_shapes:paper, its 512-d embedding at norm sqrt(512));
  three stride-2 layers instead of four (32x32 instead of 64x64), widths (512, 256, 128) / (128, 256, 512); 600
  epochs of the 20,000-image training split at batch 64 = 188k steps. Not run here.
quick: shapes with clip_shapes:quick (64-d embedding), z of 64, text_dim 64, the DCGAN reference widths of
  dcgan_cifar:quick_shapes ((128, 64, 32) / (32, 64, 128)), batch 64, Adam 2e-4 b1 0.5, EMA 0.999 with its warm-up
  ramp, 1500 steps; sample
  metrics of 1000 samples every 500 steps (FID / precision / recall in the shapes feature space and the
  attribute agreement on the held-out captions, samples/attr_* with their chance levels).
smoke: shapes_tiny, tiny players, 6 steps, on a clip_shapes:smoke run.

EXPECTED
  samples/step_<N>.png: one held-out caption per row; metrics.jsonl: train/d_loss, d_loss_mismatch, g_loss,
  g_loss_interp, and samples/attr_kind, attr_colour (per quadrant attr_quadrant_*) above their *_chance;
  measured numbers in docs/gans_textgan_draft.md.
"""
from __future__ import annotations

from jaxgen.train.presets import base_config, cadence, smoke

PRESETS = ("paper", "quick", "smoke")
# The experiments/clip_shapes.py preset whose run condition.workdir is meant to be (tests/train/test_conformance.py
# writes such a record to validate each preset).
CLIP_PRESET = {"paper": "paper", "quick": "quick", "smoke": "smoke"}


def get_config(preset: str = "paper"):
  c = base_config("gan", preset or "paper", PRESETS)
  c.data.name = "shapes"
  c.data.random_flip = False                  # a caption's "left of" / "above" must stay true
  c.condition = dict(kind="clip_text", workdir="", token_features=False, cache=False)
  c.model = dict(kind="dcgan", latent_dim=100, g_channels=(512, 256, 128), d_channels=(128, 256, 512),
                 d_norm="batch", num_classes=0, text_dim=128)
  c.gan = dict(loss="non_saturating", gp_weight=0.0, r1_gamma=0.0, truncation=0.0, matching_aware=True,
               interpolation=True, interpolation_beta=0.5)
  c.optim.update(b1=0.5, b2=0.999, ema_decay=0.999,
                 groups=dict(generator=dict(learning_rate=2e-4), discriminator=dict(learning_rate=2e-4)))
  # The EMA's warm-up ramp, decay min(0.999, (1 + t) / (10 + t)): without it, a 0.999 EMA still holds 0.999^500 =
  # 61% of the initial generator at step 500 (measured on quick: a grid of noise, FID 30550, while the trained
  # generator already drew caption-dependent scenes).
  c.optim.ema_warmup = True
  c.batch_size = 64
  c.num_samples = 64                          # 8 held-out captions, one per row
  cadence(c, steps=188_000, every=5000, log_every=500, eval_every=10_000)
  c.evals = ("sample_metrics",)
  c.eval.fid_samples = 10_000
  if c.preset == "quick":
    c.model.update(latent_dim=64, g_channels=(128, 64, 32), d_channels=(32, 64, 128), text_dim=64)
    cadence(c, steps=1500, every=500, log_every=100)
    c.eval.fid_samples = 1000
  elif c.preset == "smoke":
    c.data.name = "shapes_tiny"
    c.model.update(latent_dim=8, g_channels=(16, 8, 8), d_channels=(8, 8, 16), text_dim=8)
    smoke(c)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
