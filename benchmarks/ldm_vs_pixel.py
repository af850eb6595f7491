r"""Latent diffusion vs the pixel-space DDPM on `shapes`: train-step FLOPs and time, sampling time per image.

  python benchmarks/ldm_vs_pixel.py --autoencoder=workdirs/ldm_ae_shapes [--steps 20] [--sample 64]

Rows (each the full compiled train step of the shared trainer: forward, backward, clipping, Adam, EMA):
  pixel         experiments/ddpm_cifar.py:quick_shapes (the U-Net on 32x32x3 pixels)
  ldm           experiments/ldm.py:quick on the first stage's latents, encoded inside the step
  ldm_cached    the same step given the latents (what a cache of the training latents would cost per step)
  ldm_text      experiments/ldm.py:quick_text (text encoder + cross-attention), latents in the step
  first_stage   experiments/ldm_autoencoder.py:quick's own train step (paid once per first stage)
Columns: each row at its preset's batch size; XLA's cost analysis of the step (GFLOP), the median step time,
images/s, the steps of this row that match the FLOPs of the pixel preset's whole run (QUICK_SHAPES_STEPS
steps); then the time to draw one sample with each preset's grid sampler (decoded to pixels for latent
diffusion), and the one-off cost of encoding the training split (for a cache). All on this machine, in one
process.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--autoencoder", required=True, help="a finished ldm_autoencoder run on shapes (its workdir)")
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--sample", type=int, default=64, help="samples drawn for the sampling time")
  a = p.parse_args()
  sys.path.insert(0, ROOT)
  from benchmarks.common import median_time as _median_time, step_row as _step_row
  from jaxgen.train import runtime
  runtime.set_xla_cpu_flags()
  import jax
  import numpy as np
  from experiments import ddpm_cifar, ldm
  from jaxgen import registry
  from jaxgen.data import load_split
  rows = {}
  configs = {"pixel": ddpm_cifar.get_config("quick_shapes"), "ldm": ldm.get_config("quick"),
             "ldm_text": ldm.get_config("quick_text")}
  for name in ("ldm", "ldm_text"):
    configs[name].codec.workdir = a.autoencoder
  train = load_split(configs["pixel"], "train")
  families, params = {}, {}
  for name, config in configs.items():
    registry.validate_config(config)
    family = registry.resolve(registry.family_entry(config.family).build)(config)
    families[name] = family
    feats = ("image", "tokens") if name == "ldm_text" else ("image",)
    bb = config.batch_size                       # each preset at its own batch (ldm:quick: 8)
    rows[name], params[name] = _step_row(family, config, {k: train[k][:bb] for k in feats}, a.steps)
    rows[name]["batch"] = bb
    print(name, rows[name], flush=True)
  # Cached latents: the same family given batch['latent'] (the codec then skips the encoder).
  fam = families["ldm"]
  encode = jax.jit(fam.codec.autoencoder.encode_latents)
  t0 = time.perf_counter()
  latents = np.concatenate([np.asarray(encode(params["ldm"]["autoencoder"], train["image"][i:i + 500]))
                            for i in range(0, len(train["image"]), 500)])
  encode_split_s = time.perf_counter() - t0
  rows["ldm_cached"], _ = _step_row(fam, configs["ldm"], {"latent": latents[:configs["ldm"].batch_size]}, a.steps)
  rows["ldm_cached"]["batch"] = configs["ldm"].batch_size
  print("ldm_cached", rows["ldm_cached"], flush=True)
  # The first stage's own training step (its cost comes on top of the second stage's, once per first stage).
  from experiments import ldm_autoencoder
  ae_config = ldm_autoencoder.get_config("quick")
  ae_family = registry.resolve(registry.family_entry(ae_config.family).build)(ae_config)
  rows["first_stage"], _ = _step_row(ae_family, ae_config, {"image": train["image"][:ae_config.batch_size]}, a.steps)
  rows["first_stage"]["batch"] = ae_config.batch_size
  print("first_stage", rows["first_stage"], flush=True)
  from experiments.ddpm_cifar import QUICK_SHAPES_STEPS
  budget = rows["pixel"]["gflop"] * QUICK_SHAPES_STEPS
  print(f"\nshapes, each preset at its own batch, {jax.devices()[0].platform} x{jax.device_count()}, median of "
        f"{a.steps} steps; encoding the {len(latents)} training images once: {encode_split_s:.1f} s")
  print("| row | batch | step GFLOP (XLA) | step s | images/s | steps at the pixel run's FLOPs "
        f"({QUICK_SHAPES_STEPS} pixel steps) | compile s |")
  print("|---|---|---|---|---|---|---|")
  for name in ("pixel", "ldm", "ldm_cached", "ldm_text", "first_stage"):
    r = rows[name]
    print(f"| {name} | {r['batch']} | {r['gflop']:.3f} | {r['step_s']:.4f} | {r['batch'] / r['step_s']:.0f} | "
          f"{budget / r['gflop']:.0f} | {r['compile_s']:.1f} |")
  print("\n| row | sampler | seconds per image (batch of %d) |" % a.sample)
  print("|---|---|---|")
  for name in ("pixel", "ldm", "ldm_text"):
    fam = families[name]
    cond = fam.default_cond(a.sample)
    fn = jax.jit(lambda p, r, c, fam=fam: fam.sample(p, r, a.sample, c))
    jax.block_until_ready(fn(params[name], jax.random.PRNGKey(0), cond))
    s = _median_time(lambda: jax.block_until_ready(fn(params[name], jax.random.PRNGKey(1), cond)), 3)
    d = configs[name].diffusion
    steps = d.get("sample_steps", 0) or d.num_timesteps
    print(f"| {name} | {d.get('sampler', 'ancestral')}, {steps} steps | {s / a.sample:.4f} |")


if __name__ == "__main__":
  main()
