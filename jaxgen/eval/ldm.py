"""The evaluations of the latent-diffusion first stage (family 'ldm_autoencoder').

  ldm_reconstruction  on the first eval.reconstruction_examples held-out images, reconstructed from their
                      posterior means with the EMA params: test/psnr (dB, images in [-1, 1], the mean of the
                      per-image PSNR); where the data set has an offline feature network (digits, shapes):
                      the reconstructions graded in that space against the training split as samples are
                      (jaxgen.eval.sample_metrics.compare: test/recon_fid, _kid, _precision, _recall, ...) and
                      the attribute network's agreement with the originals' attributes (test/recon_attr_*,
                      test/recon_label_accuracy, each with its _chance), beside the same agreement on the
                      original images (test/real_attr_*, test/real_label_accuracy): the network's own ceiling.
  latent_scale        at the end of training: 1 / std of the latents of eval.latent_scale_examples training
                      images, stored in workdir/latent_scale.json (jaxgen.ldm.scaling) and logged as
                      test/latent_scale, test/latent_std.
"""
from __future__ import annotations

import numpy as np

from jaxgen.eval.sample_metrics import FEATURE_SPACES

RECONSTRUCTION_DEFAULTS = dict(reconstruction_examples=1000, latent_scale_examples=1000)


def _eval_field(config, name):
  return config.get("eval", {}).get(name, RECONSTRUCTION_DEFAULTS[name])


def make_ldm_reconstruction_eval(config, family, workdir=None):
  import jax
  import jax.numpy as jnp
  from jaxgen.data import load_heldout
  from jaxgen.eval.agreement import agreement, asked_targets
  from jaxgen.ldm.autoencoder import psnr
  num = _eval_field(config, "reconstruction_examples")
  held = {k: v[:num] for k, v in load_heldout(config).items()}
  batch_size = config.eval.batch_size
  recon = jax.jit(family.reconstruct)
  space_name = FEATURE_SPACES.get(config.data.name)
  graded = space_name in ("digits", "shapes")

  def eval_fn(state, step):
    from jaxgen.train.logging import TaskProgress
    images = held["image"]
    bar = TaskProgress(len(images), "reconstructions", "img",
                       note=f"batches of {min(batch_size, len(images))}; the first may compile")
    out = []
    for i in range(0, len(images), batch_size):
      out.append(np.asarray(recon(state.ema_params, images[i:i + batch_size])))
      bar.update(len(out[-1]))
    out = np.concatenate(out)
    x = images.astype(np.float32) / 127.5 - 1.0
    metrics = {"test/psnr": float(np.mean(np.asarray(psnr(jnp.asarray(x), jnp.asarray(out))))),
               "test/num_examples": float(len(images))}
    if graded:
      from jaxgen.eval.sample_metrics import compare, load_feature_space, reference
      space = load_feature_space(config)
      ref = reference(config, space, "train")
      asked = asked_targets(config.data.name, held, ("label", "tokens"))
      metrics.update(compare(space, out, ref, asked, prefix="test/recon_"))
      _, logits = space.outputs(images)
      metrics.update({f"test/real_{k}": float(v) for k, v in agreement(space.name, logits, asked).items()
                      if not k.endswith("_chance")})
    return metrics
  return eval_fn


def make_latent_scale_eval(config, family, workdir=None):
  from jaxgen.ldm.scaling import compute_latent_scale, write_latent_scale
  num = _eval_field(config, "latent_scale_examples")

  def eval_fn(state, step):
    record = {**compute_latent_scale(config, family, state.ema_params, num), "step": int(step)}
    if workdir is not None:
      write_latent_scale(workdir, record)
    return {"test/latent_scale": record["scale"], "test/latent_std": record["std"]}
  return eval_fn
