r"""DALL-E 2 (unCLIP, Ramesh et al. 2022) on the `shapes` captions: a diffusion prior from a caption's CLIP text
embedding to a CLIP image embedding, and a diffusion decoder from a CLIP image embedding to pixels, both trained
against one frozen CLIP run (experiments/clip_shapes.py).

Two runs, each resumable on its own (a preset names its stage): the decoder (`*_decoder`) is the DDPM family's
U-Net conditioned on config.condition.kind='clip_image' (the frozen CLIP embeds each training image inside the
step; the U-Net reads it through its timestep embedding and `embed_tokens` context tokens of its
cross-attention, jaxgen.nn.unet), the prior (`*_prior`) the DDPM family on the CLIP image embeddings themselves
(config.codec.kind='clip_image') with the decoder-only PriorTransformer (jaxgen.nn.prior_transformer)
conditioned on config.condition.kind='clip_text' (the caption's CLIP text embedding and its text tower's
per-token features), predicting the clean embedding. CLIP is restored with load_run's checks as a frozen part
(never trained, not saved with the run, fingerprinted; the trained parameters, which CLIP's own evaluation reads).
The prior's embeddings are computed once for the training split (config.condition.cache, measured faster); the
decoder's in every step (a cache saves nothing measurable there).
Embedding dropout (diffusion.label_dropout) trains the null condition for classifier-free guidance.

COMMAND (shapes, offline; CLIP first):
  python -m experiments.clip_shapes --config=experiments/clip_shapes.py:quick --workdir=workdirs/clip_quick
  python -m experiments.ldm_autoencoder --config=experiments/ldm_autoencoder.py:quick --workdir=workdirs/ldm_ae_shapes
  python -m experiments.unclip_shapes --config=experiments/unclip_shapes.py:quick_decoder \
      --workdir=workdirs/unclip_decoder --config.condition.workdir=workdirs/clip_quick \
      --config.codec.workdir=workdirs/ldm_ae_shapes
  python -m experiments.unclip_shapes --config=experiments/unclip_shapes.py:quick_prior \
      --workdir=workdirs/unclip_prior --config.condition.workdir=workdirs/clip_quick \
      --config.codec.workdir=workdirs/clip_quick
  python -m experiments.unclip_sample --workdir=workdirs/unclip_decoder --prior=workdirs/unclip_prior \
      --caption="a small red circle above a large blue square" --num=16 --rerank=8
CI check: the smoke_decoder / smoke_prior presets on a clip_shapes:smoke run.

paper_decoder / paper_prior: the paper's recipe scaled to 32x32 images and jaxgen's networks, for a CLIP of the
  clip_shapes 'paper' size (ViT-B/32, 512-wide embeddings). Decoder (the paper's 64x64 GLIDE-style decoder,
  3.5B parameters, cosine schedule, T = 1000, the image embedding as 4 context tokens and in the timestep
  embedding, embedding dropout 10%, Adam 1.2e-4, batch 2048, 800k steps): a U-Net of 192 channels (1, 2, 2, 2),
  3 residual blocks, attention at 16x16 and 8x8, cosine schedule, T = 1000, 4 embedding tokens, dropout 0.1,
  Adam 1.2e-4, batch 128 (for one host), EMA 0.9999, 800k steps; pixel space. The paper's caption tokens in the
  decoder (GLIDE's text conditioning, 50% dropped) and its two upsamplers (to 256 and 1024) are not built.
  Prior (the paper's decoder-only Transformer, width 2048, 24 layers, 32 heads, cosine schedule, T = 1000,
  x0-prediction, text conditions dropped 10%, AdamW 1.1e-4, batch 4096, 600k steps, sampled with 64 strided
  steps): width 512, 12 layers, 8 heads, the same schedule and prediction, AdamW 1.1e-4 with weight decay 6e-2,
  batch 1024, 600k steps, DDIM 64 steps. What differs: 32x32 shapes instead of 650M image-text pairs; no
  upsamplers; a smaller Transformer.
quick_decoder: the decoder diffuses the 16x16x4 latents of ldm_autoencoder:quick (f = 2; the pixel DDPM of the
  same cost draws blobs, docs/latent_diffusion.md) with a U-Net of 32 channels (1, 2), one block per level,
  attention and cross-attention at 8x8, 4 embedding tokens of width 64, T = 100, v-prediction, embedding
  dropout 0.1, batch 32, Adam 1e-3, 1500 steps; DDIM 50 steps, guidance 1 in grids and evaluations.
quick_prior: width 128, 4 layers, 4 heads over [16 CLIP token features, the text embedding, t, x, query], T = 100
  cosine, x0-prediction, text dropout 0.1, batch 128, AdamW 1e-3, 3000 steps; DDIM 25 steps.
  Both quick stages together: about 15 minutes of training on 2 CPU cores (docs/unclip.md).
smoke_decoder / smoke_prior: shapes_tiny, tiny networks, 6 steps each, on a clip_shapes:smoke run.

EXPECTED
  decoder: sample grids of held-out images' CLIP embeddings (one row per image: variations), the test sample
  metrics (samples/attr_*: the attribute network on samples against the source images' attributes);
  prior: train/loss falling; the whole pipeline measured by jaxgen.unclip.evaluate (docs/unclip.md).
"""
from __future__ import annotations

import ml_collections

from jaxgen.diffusion.config import ddpm_config
from jaxgen.train.presets import cadence, smoke

STAGES = ("decoder", "prior")
PRESETS = tuple(f"{p}_{s}" for p in ("paper", "quick", "smoke") for s in STAGES)
# The experiments/clip_shapes.py preset whose run condition.workdir expects, and the experiments/ldm_autoencoder.py
# preset of a latent decoder's codec.workdir (tests/train/test_conformance.py writes such records to validate).
CLIP_PRESET = {p: p.split("_")[0] for p in PRESETS}
FIRST_STAGE = {"quick_decoder": "quick"}


def get_config(preset: str = "paper_decoder") -> ml_collections.ConfigDict:
  c = ddpm_config(preset or "paper_decoder", PRESETS)
  scale, stage = c.preset.split("_")
  c.data.update(name="shapes_tiny" if scale == "smoke" else "shapes", random_flip=False)
  if stage == "decoder":
    _decoder(c, scale)
  else:
    _prior(c, scale)
  return c


def _decoder(c, scale):
  # embeddings in the step: a cache saves nothing measurable here (benchmarks/unclip_cache.py, docs/unclip.md)
  c.condition = dict(kind="clip_image", workdir="", cache=False)
  c.model.update(ch=192, ch_mult=(1, 2, 2, 2), num_res_blocks=3, attn_resolutions=(16, 8), dropout=0.1,
                 num_groups=32, embed_dim=512, embed_tokens=4, text_width=512, cross_attn_heads=8)
  c.diffusion.update(beta_schedule="cosine", num_timesteps=1000, label_dropout=0.1, guidance=3.0, sampler="ddim",
                     sample_steps=250)
  c.optim.update(learning_rate=1.2e-4, warmup_steps=5000, grad_clip=1.0, ema_decay=0.9999)
  c.batch_size = 128
  c.num_samples = 64
  cadence(c, steps=800_000, every=10_000, sample_every=20_000, eval_every=0)
  c.evals = ("sample_metrics",)
  if scale == "quick":
    c.codec = dict(kind="frozen_autoencoder", workdir="", scale="auto", cache=False)
    c.model.update(ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,), dropout=0.0, num_groups=8,
                   embed_dim=64, embed_tokens=4, text_width=64, cross_attn_heads=4)
    c.diffusion.update(beta_schedule="linear", num_timesteps=100, beta_start=1e-3, beta_end=0.2, sample_steps=50,
                       prediction="v", guidance=1.0)
    c.optim.update(learning_rate=1e-3, warmup_steps=100, ema_decay=0.995)
    c.batch_size = 32
    cadence(c, steps=1500, every=500, sample_every=500, eval_every=0)
    c.eval.fid_samples = 500
  elif scale == "smoke":
    c.model.update(ch=8, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(32,), dropout=0.0, num_groups=4,
                   embed_dim=16, embed_tokens=2, text_width=16, cross_attn_heads=2)
    c.diffusion.update(beta_schedule="linear", num_timesteps=20, beta_start=1e-3, beta_end=0.2, sample_steps=5)
    c.optim.update(learning_rate=1e-3)
    smoke(c)


def _prior(c, scale):
  c.codec = dict(kind="clip_image", workdir="")
  # the training split's CLIP embeddings and token features computed once (jaxgen.unclip.cache): the quick prior's
  # step 5% cheaper for under 3 s of encoding (benchmarks/unclip_cache.py)
  c.condition = dict(kind="clip_text", workdir="", token_features=True, cache=True)
  # the CLIP paper config: 512-wide embeddings, a text tower of width 512 over 24 caption positions
  c.model = dict(kind="prior_transformer", width=512, depth=12, num_heads=8, mlp_ratio=4.0, text_embed_dim=512,
                 num_tokens=24, token_dim=512, dtype="float32", dropout=0.0)
  c.diffusion.update(beta_schedule="cosine", num_timesteps=1000, prediction="x0", label_dropout=0.1, guidance=1.0,
                     sampler="ddim", sample_steps=64, clip_x0=False)
  c.optim.update(learning_rate=1.1e-4, warmup_steps=5000, grad_clip=1.0, weight_decay=6e-2, ema_decay=0.9999)
  c.batch_size = 1024
  cadence(c, steps=600_000, every=10_000, sample_every=0, eval_every=0)
  c.evals = ()
  if scale == "quick":
    c.model.update(width=128, depth=4, num_heads=4, text_embed_dim=64, num_tokens=16, token_dim=64)
    c.diffusion.update(num_timesteps=100, sample_steps=25)
    c.optim.update(learning_rate=1e-3, warmup_steps=100, weight_decay=0.0, ema_decay=0.995)
    c.batch_size = 128
    cadence(c, steps=3000, every=1000, sample_every=0, eval_every=0)
  elif scale == "smoke":
    c.model.update(width=16, depth=1, num_heads=2, text_embed_dim=16, num_tokens=24, token_dim=16)
    c.diffusion.update(num_timesteps=20, sample_steps=5)
    c.optim.update(learning_rate=1e-3, weight_decay=0.0)
    smoke(c, sample_every=0)


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
