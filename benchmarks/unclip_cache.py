r"""unCLIP's CLIP embeddings: computed inside every train step (the default) or cached once for the training split.

  python benchmarks/unclip_cache.py --clip=workdirs/clip_quick --autoencoder=workdirs/ldm_ae_shapes [--steps 20]

Rows (each the full compiled train step of the shared trainer at the quick presets' batch sizes):
  decoder          experiments/unclip_shapes.py:quick_decoder: the frozen CLIP embeds each batch's images
  decoder_cached   the same step given the embeddings in the batch (what a cache of them would cost per step)
  prior            quick_prior: the frozen CLIP embeds the images (x0) and the captions (conditions) in the step
  prior_cached     the same step given x0, the text embeddings and the token features in the batch
and the one-off cost of computing the cache for the whole training split (images, and captions with their token
features). The break-even number of steps is that cost over the per-step saving.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--clip", required=True, help="a finished clip_shapes:quick run (its workdir)")
  p.add_argument("--autoencoder", required=True, help="a finished ldm_autoencoder:quick run (the decoder's latents)")
  p.add_argument("--steps", type=int, default=20)
  a = p.parse_args()
  sys.path.insert(0, ROOT)
  from benchmarks.common import step_row
  from jaxgen.train import runtime
  runtime.set_xla_cpu_flags()
  import jax
  import numpy as np
  from experiments import unclip_shapes
  from jaxgen import registry
  from jaxgen.clip.api import load_clip
  from jaxgen.data import load_split
  from jaxgen.diffusion.codecs import VectorCodec
  from jaxgen.conditioners import clip_scale
  configs = {s: unclip_shapes.get_config(f"quick_{s}") for s in ("decoder", "prior")}
  for c in configs.values():
    c.condition.workdir = a.clip
  configs["decoder"].codec.workdir = a.autoencoder
  configs["prior"].codec.workdir = a.clip
  train = load_split(configs["decoder"], "train")
  clip = load_clip(a.clip)
  d = clip.family.model.embed_dim
  # the cache: every training image's and caption's embedding (and token features), timed
  enc_img = jax.jit(clip.family.encode_images)
  enc_txt = jax.jit(clip.family.encode_text_features)
  n = len(train["image"])
  t0 = time.perf_counter()
  img = np.concatenate([np.asarray(enc_img(clip.state.params, train["image"][i:i + 500])) for i in range(0, n, 500)])
  image_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  feats, txt = zip(*[tuple(map(np.asarray, enc_txt(clip.state.params, train["tokens"][i:i + 500])))
                     for i in range(0, n, 500)])
  text_s = time.perf_counter() - t0
  txt, feats, s = np.concatenate(txt), np.concatenate(feats), clip_scale(d)
  rows = {}
  for stage, config in configs.items():
    registry.validate_config(config)
    fam = registry.resolve(registry.family_entry(config.family).build)(config)
    b = config.batch_size
    if stage == "decoder":
      batch = {"image": train["image"][:b]}
      cached_fam = dataclasses.replace(fam, conditioner=None, grid_cond=None,
                                       frozen_parts={"autoencoder": fam.frozen_parts["autoencoder"]})
      cached = {"image": train["image"][:b], "embedding": s * img[:b]}
    else:
      batch = {"image": train["image"][:b], "tokens": train["tokens"][:b]}
      cached_fam = dataclasses.replace(fam, conditioner=None, grid_cond=None, frozen_parts={},
                                       codec=VectorCodec((d,), feature="x0"))
      cached = {"x0": s * img[:b], "embedding": s * txt[:b], "token_features": feats[:b]}
    rows[stage], _ = step_row(fam, config, batch, a.steps)
    print(stage, rows[stage], flush=True)
    rows[stage + "_cached"], _ = step_row(cached_fam, config, cached, a.steps)
    print(stage + "_cached", rows[stage + "_cached"], flush=True)
  print(f"\nshapes, {jax.devices()[0].platform} x{jax.device_count()}, median of {a.steps} steps; the cache of the "
        f"{n} training examples: images {image_s:.1f} s, captions (embeddings and token features) {text_s:.1f} s")
  print("| row | batch | step GFLOP (XLA) | step s | compile s | break-even steps of the cache |")
  print("|---|---|---|---|---|---|")
  for stage in ("decoder", "prior"):
    b = configs[stage].batch_size
    once = image_s + (text_s if stage == "prior" else 0.0)
    for name in (stage, stage + "_cached"):
      r = rows[name]
      saving = rows[stage]["step_s"] - rows[stage + "_cached"]["step_s"]
      even = f"{once / saving:.0f}" if name.endswith("cached") and saving > 0 else ("never" if name.endswith(
          "cached") else "")
      print(f"| {name} | {b} | {r['gflop']:.3f} | {r['step_s']:.4f} | {r['compile_s']:.1f} | {even} |")


if __name__ == "__main__":
  main()
