"""CLIP's default config: OpenAI's ViT-B/32 recipe as jaxgen config fields.

`clip_config(preset)` is what experiments/clip_shapes.py starts every preset from and what jaxgen.clip.convert_hf
builds a converted run's config from, so an installed jaxgen (without the repository's experiments/) can convert
weights. NumPy-free and JAX-free.
"""
from __future__ import annotations

import ml_collections

from jaxgen.train.presets import PRESETS, base_config, cadence


def clip_config(preset: str = "paper", presets=PRESETS):
  """The trainer's defaults (base_config('clip', preset)) with OpenAI's ViT-B/32 recipe on the shapes data:
  patch 32, vision width 768, 12 layers, 12 heads; text width 512, 12 layers, 8 heads; joint width 512;
  quick_gelu; AdamW lr 5e-4 (b2 0.98, eps 1e-6, weight decay 0.2 but not on the no_decay group), 2000 warm-up
  steps and a cosine decay to 0 at step 20k, batch 32768, 20k steps; the zero-shot evaluation every 5000 steps.
  A preset other than 'paper' only names the config here; the experiment changes the fields it needs."""
  c = base_config("clip", preset or "paper", presets)
  c.data.name = "shapes"
  # model.vision='resnet' swaps in the ResNet tower (jaxgen.nn.clip_resnet; vision_layers: blocks per stage,
  # vision_width: the first stage's middle channels, vision_heads: the attention pool's heads; RN50's values:
  # (3, 4, 6, 3), 64, 32).
  c.model = dict(vision="vit", vision_layers=(3, 4, 6, 3), patch_size=32, vision_width=768, vision_depth=12,
                 vision_heads=12, text_width=512, text_depth=12, text_heads=8,
                 text_len=ml_collections.config_dict.placeholder(int), embed_dim=512, mlp_ratio=4.0,
                 activation="quick_gelu", scan=True)
  c.optim.update(learning_rate=5e-4, warmup_steps=2000, decay_steps=20_000, b1=0.9, b2=0.98, eps=1e-6,
                 weight_decay=0.2, ema_decay=0.999, groups=dict(no_decay=dict(weight_decay=0.0)))
  c.batch_size = 32768
  c.evals = ("clip_zero_shot",)
  c.eval.update(batch_size=500, probe_steps=500, probe_learning_rate=1e-2, probe_train_examples=20_000,
                use_ema=False)
  cadence(c, steps=20_000, every=5000, log_every=100, sample_every=0)
  return c
