"""Latent scaling (Rombach et al. 2022, sec. 4.3.2 / appendix G): the second stage diffuses z * scale with
scale = 1 / std of the first stage's latents, so that its data have unit variance whatever the KL weight left.

The std is taken over every element of the posterior means (what FrozenAutoencoderCodec.encode gives) of the
first `num` images of the training split, with the run's EMA params. It is stored with the run as
workdir/latent_scale.json {scale, std, mean, num_examples, step}: written by the 'latent_scale' evaluation at the
end of training (jaxgen.eval.ldm), or for a finished run by `latent_scale(workdir, num=...)`. A DDPM with
codec.kind='frozen_autoencoder' and codec.scale='auto' reads it (`read_latent_scale`); a file written at another
step than the run's latest checkpoint (the run trained on afterwards) is refused, as is a missing one.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

import numpy as np

SCALE_FILE = "latent_scale.json"


def encode_in_chunks(encode, params, images, chunk: int, what: str, dtype=np.float32) -> np.ndarray:
  """encode(params, images[i:i + chunk]) over all `images`, concatenated as numpy `dtype`, with progress lines
  (`what`: the task's name in them)."""
  from jaxgen.train.logging import TaskProgress
  bar = TaskProgress(len(images), what, "img", note=f"chunks of {min(chunk, len(images))}; the first compiles")
  out = []
  for i in range(0, len(images), chunk):
    out.append(np.asarray(encode(params, images[i:i + chunk]), dtype))
    bar.update(len(out[-1]))
  return np.concatenate(out)


def compute_latent_scale(config, family, params, num: int, batch_size: int = 256) -> Dict[str, Any]:
  """{scale, std, mean, num_examples} of the posterior means of the first `num` training images."""
  import jax
  from jaxgen.data import load_split
  if num < 2:
    raise ValueError(f"num={num} must be >= 2 (a standard deviation needs two values)")
  images = load_split(config, "train")["image"][:num]
  z = encode_in_chunks(jax.jit(family.encode_latents), params, images, batch_size,
                       "latent scale: encoding training images", np.float64)
  std = float(z.std())
  if not std > 0:
    raise ValueError(f"the latents of {len(images)} training images have std {std}: no scale 1/std exists")
  return {"scale": 1.0 / std, "std": std, "mean": float(z.mean()), "num_examples": int(len(images))}


def write_latent_scale(workdir: str, record: Dict[str, Any]) -> None:
  tmp = os.path.join(workdir, SCALE_FILE + ".tmp")
  with open(tmp, "w") as f:
    json.dump(record, f, indent=2)
  os.replace(tmp, os.path.join(workdir, SCALE_FILE))


def latent_scale(workdir: str, *, num: int = 1000) -> Dict[str, Any]:
  """Compute the latent scale of the finished first-stage run in `workdir` (its latest checkpoint, EMA params),
  store it in workdir/latent_scale.json and return the record."""
  from jaxgen.train.run import load_run
  run = load_run(workdir)
  if not hasattr(run.family, "encode_latents"):
    raise ValueError(f"{workdir} holds a {run.config.family!r} run, which has no latents to scale")
  record = {**compute_latent_scale(run.config, run.family, run.params, num), "step": int(run.step)}
  write_latent_scale(workdir, record)
  return record


def read_latent_scale(workdir: str) -> float:
  """The stored scale of the first-stage run in `workdir`; ValueError (one line) when it is missing or was
  computed at another step than the run's latest checkpoint."""
  path = os.path.join(workdir, SCALE_FILE)
  if not os.path.isfile(path):
    raise ValueError(f"codec.scale='auto' but {path} does not exist: train the first stage with the "
                     "'latent_scale' evaluation, or run jaxgen.ldm.scaling.latent_scale(workdir)")
  with open(path) as f:
    record = json.load(f)
  directory = os.path.join(workdir, "checkpoints")
  latest = max((int(n) for n in os.listdir(directory) if n.isdigit()), default=0) if os.path.isdir(directory) else 0
  if record["step"] != latest:
    raise ValueError(f"codec.scale='auto': {path} was computed at step {record['step']}, but the run's latest "
                     f"checkpoint is step {latest}; recompute it with jaxgen.ldm.scaling.latent_scale(workdir)")
  return float(record["scale"])
