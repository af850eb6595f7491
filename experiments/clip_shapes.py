r"""CLIP (Radford et al. 2021) on the `shapes` captions, evaluated by zero-shot classification and retrieval.

COMMAND (OpenAI's ViT-B/32 recipe, scaled to nothing but the data):
  python -m experiments.clip_shapes --workdir=workdirs/clip_shapes
Quick (minutes on 2 CPU cores):
  python -m experiments.clip_shapes --config=experiments/clip_shapes.py:quick --workdir=workdirs/clip_quick
CI check:
  python -m experiments.clip_shapes --config=experiments/clip_shapes.py:smoke --workdir=/tmp/clip_smoke

paper: ViT-B/32 (patch 32, width 768, 12 layers, 12 heads), a text transformer of width 512, 12 layers, 8 heads,
a joint embedding of 512, quick_gelu, AdamW (lr 5e-4, b2 0.98, eps 1e-6, weight decay 0.2, not on biases, gains,
the class embedding or the temperature), 2000 warm-up steps then a cosine decay to 0 at the last step, batch
32768, 20k steps (OpenAI: 32 epochs of WIT's
400M pairs, ~390k steps; this preset validates but is not meant to run on shapes). Choices that differ from
OpenAI's, by necessity: the data are shapes' 32x32 images (so patch 32 is one patch per image) and
captions of a 26-word vocabulary, 24 tokens at most (OpenAI: 49,152 BPE tokens, 77 positions), pooled at the
last non-pad word (no end-of-text token); float32 (OpenAI: mixed precision); the trainer's EMA is kept but the
evaluation reads the trained parameters, as CLIP has no EMA.
quick: patch 16 (a 2x2 grid: each quadrant's object in one patch), vision width 128, 3 layers, 4 heads; text
width 64, 2 layers, reading 16 token positions (the longest caption has 14); embedding 64; batch 128; AdamW lr
1e-3 after 100 warm-up steps, cosine decay to 0 at step 3000; 3000 steps (4.5 minutes of training on this
session's 2-core AMD EPYC VM; about 15 on the slower 2-core VM of earlier sessions). Patch 8 (17 tokens, width 64) was
slower to learn shape kind (linear probe 0.48 at step 400) and patch 4 five times dearer per step; lr 2e-3 was
worse (zero-shot kind 0.36 vs 0.57 at step 1000). Measured numbers: docs/clip.md.
smoke: shapes_tiny, a width-16 model, 6 steps.

EXPECTED
  metrics.jsonl: train/loss, train/accuracy_i2t, train/accuracy_t2i, train/logit_scale; every eval_every steps
  test/zero_shot_{kind,colour,size}_accuracy on the single-object held-out images (prompt ensembles built from
  the caption grammar; zero_shot_best_prompt_*: the best single caption), test/zero_shot_count_accuracy (every
  held-out image), beside test/probe_*_accuracy (a
  logistic regression on the image embeddings of the training split) and test/*_chance; retrieval
  test/retrieval_{i2t,t2i}_r{1,5} over the held-out split, a hit being any caption with the same text.
"""
from __future__ import annotations

from jaxgen.clip.config import clip_config
from jaxgen.train.presets import cadence, smoke


def get_config(preset: str = "paper"):
  # paper: the library's CLIP config (jaxgen.clip.config: ViT-B/32 and OpenAI's text transformer, AdamW 5e-4,
  # batch 32768, 20k steps; the converter of Hugging Face weights starts from it too)
  c = clip_config(preset or "paper")
  if c.preset == "quick":
    c.model.update(patch_size=16, vision_width=128, vision_depth=3, vision_heads=4, text_width=64, text_depth=2,
                   text_heads=4, text_len=16, embed_dim=64, scan=False)
    c.optim.update(learning_rate=1e-3, warmup_steps=100, decay_steps=3000)
    c.batch_size = 128
    c.eval.update(probe_train_examples=5000)
    cadence(c, steps=3000, every=1500, log_every=50, sample_every=0)
  elif c.preset == "smoke":
    c.data.name = "shapes_tiny"
    c.model.update(patch_size=8, vision_width=16, vision_depth=1, vision_heads=2, text_width=16, text_depth=1,
                   text_heads=2, embed_dim=16, scan=False)
    c.eval.update(batch_size=32, probe_steps=5, probe_train_examples=64)
    smoke(c, sample_every=0)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
