r"""StyleGAN figures of a finished run (model.kind='stylegan'): style mixing, the truncation sweep with its
FID / precision / recall curve, and noise-input resampling. Re-runnable; reads the run, writes PNGs.

  python -m benchmarks.stylegan_figures --workdir=workdirs/stylegan_quick [--out=docs/figures] [--num=1000]

Writes (under --out, names prefixed with --prefix, default 'stylegan_'):
  mixing_c<k>.png   the paper's Figure 3 form: the top row holds the images of latents B (columns), the left
                    column those of latents A (rows); cell (i, j) takes ws[:k] (the coarse styles) from A_i and
                    ws[k:] (the fine ones) from B_j (k = 1: the 4x4 layer only from A; k = 3: 4x4 and 8x8)
  truncation.png    one row per latent, psi = 0 ... 1 along the row (truncation in W towards the tracked w_avg;
                    the same noise along a row)
  truncation_curve.png / truncation_curve.json   FID, precision and recall (k=3) of --num samples per psi in
                    the data set's feature space (jaxgen.eval.sample_metrics: reference, compare, make_sampler
                    with the sampling option truncation_psi, checked by registry.apply_sample_options); nothing
                    is written into the run's metrics
  noise.png         per row one w, synthesised with several noise draws, then the per-pixel standard deviation
                    across 32 draws (mean over RGB; white = the largest std in the figure)
The EMA generator of the latest checkpoint is used throughout.
"""
from __future__ import annotations

import json
import os

from absl import app, flags

flags.DEFINE_string("workdir", None, "a finished model.kind='stylegan' run")
flags.DEFINE_string("out", "docs/figures", "where the PNGs go")
flags.DEFINE_string("prefix", "stylegan_", "file name prefix")
flags.DEFINE_integer("num", 1000, "samples per truncation value for the metrics (0: skip the curve)")
flags.DEFINE_list("psis", ["0", "0.25", "0.5", "0.7", "0.85", "1"], "truncation values of the curve")
flags.DEFINE_integer("seed", 0, "seed of the latents and noise of the figures")
FLAGS = flags.FLAGS


def mixing_grid(gan, g_vars, rng, rows: int, cols: int, crossover: int):
  """(rows + 1) x (cols + 1) images in [-1, 1] (the corner blank): row 0 = B_j, column 0 = A_i, cell (i, j) =
  synthesis of ws with [:crossover] from A_i and [crossover:] from B_j (noise fixed per column)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  ra, rb, rn = jax.random.split(rng, 3)
  gen = gan.generator
  wa = gen.apply(g_vars, jax.random.normal(ra, (rows, gan.latent_dim)), method="map_latents")
  wb = gen.apply(g_vars, jax.random.normal(rb, (cols, gan.latent_dim)), method="map_latents")
  synth = jax.jit(lambda ws: gen.apply(g_vars, ws, rngs={"noise": rn}, method="synthesize"))
  num_ws = gen.num_ws
  top = np.asarray(synth(jnp.broadcast_to(wb[:, None], (cols, num_ws, wb.shape[-1]))))
  out = [np.concatenate([np.ones((1,) + top.shape[1:], np.float32), top])]
  left = np.asarray(synth(jnp.broadcast_to(wa[:, None], (rows, num_ws, wa.shape[-1]))))
  layer = jnp.arange(num_ws)[None, :, None]
  for i in range(rows):
    ws = jnp.where(layer < crossover, wa[i][None, None], wb[:, None])      # (cols, num_ws, D)
    out.append(np.concatenate([left[i:i + 1], np.asarray(synth(ws))]))
  return np.concatenate(out)


def truncation_rows(gan, g_vars, rng, rows: int, psis):
  """rows x len(psis) images: latent i truncated by each psi (same noise along a row)."""
  import jax
  import numpy as np
  rz, rn = jax.random.split(rng)
  z = jax.random.normal(rz, (rows, gan.latent_dim))
  gen = gan.generator
  cols = [np.asarray(gen.apply(g_vars, gen.apply(g_vars, z, float(p), method="map_latents"),
                               rngs={"noise": rn}, method="synthesize")) for p in psis]
  return np.stack(cols, axis=1).reshape((rows * len(psis),) + cols[0].shape[1:])


def noise_rows(gan, g_vars, rng, rows: int, shown: int, draws: int = 32):
  """(images rows x shown, std maps rows x H x W): one w per row under `draws` noise draws."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  rz, rn = jax.random.split(rng)
  gen = gan.generator
  w = gen.apply(g_vars, jax.random.normal(rz, (rows, gan.latent_dim)), method="map_latents")
  synth = jax.jit(lambda w, k: gen.apply(g_vars, w, rngs={"noise": k}, method="synthesize"))
  stack = np.stack([np.asarray(synth(w, jax.random.fold_in(rn, d))) for d in range(draws)], axis=1)
  std = stack.std(axis=1).mean(axis=-1)                              # (rows, H, W)
  return stack[:, :shown], std


def _std_to_rgb(std, vmax):
  import numpy as np
  from matplotlib import cm
  rgb = cm.magma(np.clip(std / max(vmax, 1e-8), 0, 1))[..., :3]
  return rgb * 2.0 - 1.0


def truncation_metrics(run, psis, num: int):
  """{psi: {'fid', 'precision', 'recall'}} of `num` EMA samples per psi in the run's feature space."""
  import jax
  import numpy as np
  from jaxgen import registry
  from jaxgen.eval import sample_metrics as sm
  space = sm.load_feature_space(run.config)
  ref = sm.reference(run.config, space)
  out = {}
  for psi in psis:
    options = {"truncation_psi": float(psi)}
    registry.apply_sample_options(run.config, options)            # the family's rule for the option
    sample, chunk = sm.make_sampler(run.family, min(num, 500), options)
    base = jax.random.fold_in(jax.random.PRNGKey(run.config.seed), sm.SAMPLE_SEED)
    images = np.concatenate([sample(run.params, jax.random.fold_in(base, i)) for i in range(-(-num // chunk))])
    m = sm.compare(space, images[:num], ref)
    out[float(psi)] = {k.split("/")[-1]: m[k] for k in ("samples/fid", "samples/precision", "samples/recall")}
    print(f"psi {psi}: {out[float(psi)]}", flush=True)
  return out


def plot_curve(path, curve, title):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  psis = sorted(curve)
  fig, ax = plt.subplots(1, 2, figsize=(8, 3))
  ax[0].plot(psis, [curve[p]["fid"] for p in psis], "o-")
  ax[0].set(xlabel="truncation psi", ylabel="FID (shapes features)", yscale="log")
  ax[1].plot(psis, [curve[p]["precision"] for p in psis], "o-", label="precision")
  ax[1].plot(psis, [curve[p]["recall"] for p in psis], "s-", label="recall")
  ax[1].set(xlabel="truncation psi", ylim=(-0.02, 1.02))
  ax[1].legend()
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv):
  del argv
  import jax
  import numpy as np
  from jaxgen.train.images import save_image_grid
  from jaxgen.train.run import load_run
  run = load_run(FLAGS.workdir, overrides={"evals": ()})
  gan = run.family
  if getattr(gan, "truncation_psi", None) is None:
    raise SystemExit(f"{FLAGS.workdir}: not a StyleGAN run (model.kind={run.config.model.kind!r})")
  g_vars = run.params["generator"]
  os.makedirs(FLAGS.out, exist_ok=True)
  path = lambda name: os.path.join(FLAGS.out, FLAGS.prefix + name)   # noqa: E731
  key = jax.random.PRNGKey(FLAGS.seed)
  for k in (1, 3):
    if k >= gan.generator.num_ws:
      continue
    grid = mixing_grid(gan, g_vars, jax.random.fold_in(key, 10 + k), rows=5, cols=6, crossover=k)
    print("wrote", save_image_grid(path(f"mixing_c{k}.png"), grid, ncols=7, min_size=256))
  psis = [float(p) for p in FLAGS.psis]
  sweep = np.linspace(0.0, 1.0, 6)
  print("wrote", save_image_grid(path("truncation.png"), truncation_rows(gan, g_vars, jax.random.fold_in(key, 20), 6,
                                                                          sweep), ncols=len(sweep), min_size=256))
  imgs, std = noise_rows(gan, g_vars, jax.random.fold_in(key, 30), rows=4, shown=5)
  std_rgb = _std_to_rgb(std, float(std.max()))
  if imgs.shape[-1] == 1:                                             # grey data: shown as RGB beside the map
    imgs = np.repeat(imgs, 3, axis=-1)
  cells = np.concatenate([imgs, std_rgb[:, None].astype(np.float32)], axis=1)
  print("wrote", save_image_grid(path("noise.png"), cells.reshape((-1,) + cells.shape[2:]), ncols=cells.shape[1],
                                 min_size=256))
  print(f"noise: per-pixel std across draws (mean over pixels) {float(std.mean()):.4f}, max {float(std.max()):.4f}")
  if FLAGS.num:
    curve = truncation_metrics(run, psis, FLAGS.num)
    with open(path("truncation_curve.json"), "w") as f:
      json.dump({"workdir": os.path.abspath(FLAGS.workdir), "step": run.step, "num_samples": FLAGS.num,
                 "curve": {str(k): v for k, v in curve.items()}}, f, indent=1)
    plot_curve(path("truncation_curve.png"), curve, f"{os.path.basename(os.path.normpath(FLAGS.workdir))}, step "
               f"{run.step}, {FLAGS.num} samples per psi")
    print("wrote", path("truncation_curve.png"))


if __name__ == "__main__":
  flags.mark_flag_as_required("workdir")
  app.run(main)
