"""Figures of a finished run, made at its last step (evaluations named '*_figures' in jaxgen.registry).

  make_flow_figures  workdir/figures/samples_T<t>.png at each config.figures.temperatures (on digits scored in
                     the digits feature space against the training split: samples/T<t>/fid, precision, ...,
                     label_accuracy), interpolations.png and manipulate_<a>_to_<b>.png (adding the class-mean
                     latent difference; samples/manipulated_<a>_to_<b>_fraction: the digits network's label is b)
  make_vae_figures   workdir/figures/reconstructions.png (data and reconstruction rows), samples.png,
                     interpolations.png
Both return a trainer eval_fn(state, step) -> {metrics}; the EMA params are drawn from.
"""
from __future__ import annotations

import os

import jax
import numpy as np

from jaxgen.train.images import save_image_grid

NUM_FIGURE_SAMPLES = 100
FLOW_CHUNK = 64      # rows per compiled call of a flow's encode / decode in the figures


class _CompiledFlow:
  """A flow's `encode` and `decode` each compiled once, for chunks of FLOW_CHUNK rows (the last chunk padded):
  the figures call them on 8 to thousands of rows, which eager op-by-op execution took seconds per call for and
  one compile per batch shape would too. Both maps act on each row alone, so padding changes no result."""

  def __init__(self, model):
    self._fns = {"encode": jax.jit(model.encode), "decode": jax.jit(model.decode)}

  def _chunked(self, name, params, x):
    x = np.asarray(x)
    out = []
    for i in range(0, len(x), FLOW_CHUNK):
      part = x[i:i + FLOW_CHUNK]
      pad = FLOW_CHUNK - len(part)
      if pad:
        part = np.concatenate([part, np.repeat(part[-1:], pad, axis=0)])
      out.append(np.asarray(self._fns[name](params, part))[:FLOW_CHUNK - pad])
    return np.concatenate(out)

  def encode(self, params, images):
    return self._chunked("encode", params, images)

  def decode(self, params, eps):
    return self._chunked("decode", params, eps)


def make_flow_figures(config, model, workdir):
  from jaxgen.data import load_heldout, load_split
  from jaxgen.eval import sample_metrics as sm
  from jaxgen.flows.latent import class_mean_latents, interpolate, manipulate
  from jaxgen.train.family import grid_labels
  digits = config.data.name == "digits"
  space = sm.load_feature_space(config) if digits else None
  ref = sm.reference(config, space) if digits else None
  num = NUM_FIGURE_SAMPLES
  labels = grid_labels(num, model.num_classes) if model.num_classes else None
  sample = jax.jit(lambda p, r, t: model.sample(p, r, num, {"label": labels} if labels is not None else None,
                                                          temperature=t))
  compiled = _CompiledFlow(model)

  def eval_fn(state, step):
    params, out_dir, results = state.ema_params, os.path.join(workdir, "figures"), {}
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), sm.SAMPLE_SEED)
    from jaxgen.train.logging import TaskProgress
    temps = tuple(config.figures.temperatures)
    stages = TaskProgress(len(temps) + (0 if model.num_classes else 2), "flow figures", quiet_start=True)
    for t in temps:
      stages.stage(f"{num} samples at temperature {t:g}" + (" (the first compiles)" if t == temps[0] else ""))
      images = np.asarray(sample(params, rng, t))
      save_image_grid(os.path.join(out_dir, f"samples_T{t:g}.png"), images,
                      ncols=num // model.num_classes if model.num_classes else 10)
      if digits:
        results.update(sm.compare(space, images, ref, None if labels is None else {"label": np.asarray(labels)},
                                  prefix=f"samples/T{t:g}/"))
    if model.num_classes:
      return results
    test, train = load_heldout(config), load_split(config, "train")
    n = 8
    stages.stage(f"interpolations between {n} pairs of held-out images")
    strip = interpolate(compiled, params, test["image"][:n], test["image"][n:2 * n], 8)
    save_image_grid(os.path.join(out_dir, "interpolations.png"), np.asarray(strip).reshape((-1,) + strip.shape[2:]),
                    ncols=8)
    src, dst = config.figures.manipulate
    stages.stage(f"class-mean latents of {len(train['image'])} training images, {src} moved towards {dst}")
    means = class_mean_latents(compiled, params, train["image"], train["label"], int(train["label"].max()) + 1)
    pick = test["image"][test["label"] == src][:n]
    strengths = np.linspace(0.0, 1.5, 7)
    moved = manipulate(compiled, params, pick, means[dst] - means[src], strengths)
    save_image_grid(os.path.join(out_dir, f"manipulate_{src}_to_{dst}.png"),
                    np.asarray(moved).reshape((-1,) + moved.shape[2:]), ncols=len(strengths))
    if digits:
      last = np.asarray(moved[:, int(np.argmin(np.abs(strengths - 1.0)))])   # the full class-mean difference
      results[f"samples/manipulated_{src}_to_{dst}_fraction"] = float(np.mean(space.predict(last)["label"] == dst))
    return results
  return eval_fn


def make_vae_figures(config, vae, workdir, num: int = 50):
  from jaxgen.data import load_heldout
  images = load_heldout(config)["image"]
  reconstruct = jax.jit(vae.reconstruct)
  sample = jax.jit(vae.sample, static_argnums=2)
  interpolate = jax.jit(vae.interpolate, static_argnums=4)

  def eval_fn(state, step):
    params, directory = state.ema_params, os.path.join(workdir, "figures")
    rng = jax.random.PRNGKey(config.seed)
    x = images[:num]
    from jaxgen.train.logging import TaskProgress
    stages = TaskProgress(3, "vae figures", quiet_start=True)
    stages.stage(f"reconstructions of {num} held-out images")
    rec = np.asarray(reconstruct(params, x, rng))
    ncols = 10
    rows = []
    for i in range(0, num, ncols):
      rows += [x[i:i + ncols].astype(np.float32) / 127.5 - 1.0, rec[i:i + ncols]]
    save_image_grid(os.path.join(directory, "reconstructions.png"), np.concatenate(rows), ncols=ncols)
    stages.stage("100 samples")
    save_image_grid(os.path.join(directory, "samples.png"),
                    np.asarray(sample(params, jax.random.fold_in(rng, 1), 100)), ncols=10)
    stages.stage("interpolations between 8 pairs of held-out images")
    path = np.asarray(interpolate(params, images[:8], images[8:16], rng, 10))
    save_image_grid(os.path.join(directory, "interpolations.png"), path.reshape((-1,) + path.shape[2:]), ncols=10)
    return {}
  return eval_fn
