"""Build a VAE from an ml_collections config (validated first, nothing compiled), and its held-out evaluation.

Config fields read here: data.name, model.{kind ('mlp' | 'conv'), latent_dim, hidden, channels, likelihood,
beta}, eval.{num_iwae_samples, iwae_chunk, batch_size}. The trainer reads the rest (see experiments/vae_digits.py).
"""
from __future__ import annotations

import math
import os

import numpy as np

from jaxgen.data.tfds import get_dataset_spec
from jaxgen.vae import likelihoods

KINDS = ("mlp", "conv")


def validate_vae_config(config) -> None:
  """ValueError naming the bad value."""
  from jaxgen.nn.convnets import check_conv_shape
  spec = get_dataset_spec(config.data.name)
  m = config.model
  if m.kind not in KINDS:
    raise ValueError(f"model.kind={m.kind!r}; choose one of: {', '.join(KINDS)}")
  likelihoods.check_likelihood(m.likelihood)
  if m.latent_dim < 1:
    raise ValueError(f"model.latent_dim={m.latent_dim} must be >= 1")
  if not (m.beta >= 0 and math.isfinite(m.beta)):
    raise ValueError(f"model.beta={m.beta} must be a finite number >= 0")
  if m.kind == "conv":
    check_conv_shape(spec.image_shape, tuple(m.channels))
  elif not m.hidden or min(m.hidden) < 1:
    raise ValueError(f"model.hidden={tuple(m.hidden)} must be a non-empty list of positive widths")
  e = config.eval
  if e.num_iwae_samples < 1 or e.iwae_chunk < 1 or e.batch_size < 1:
    raise ValueError(f"eval.num_iwae_samples={e.num_iwae_samples}, eval.iwae_chunk={e.iwae_chunk} and "
                     f"eval.batch_size={e.batch_size} must all be >= 1")


def make_vae(config):
  import flax.linen as nn
  from jaxgen.nn.convnets import ConvDecoder, ConvEncoder
  from jaxgen.nn.mlp import ImageMLP, MLP
  from jaxgen.vae.vae import VAE
  validate_vae_config(config)
  spec = get_dataset_spec(config.data.name)
  m = config.model
  out_ch = likelihoods.num_params(m.likelihood) * spec.image_shape[-1]
  if m.kind == "conv":
    encoder = ConvEncoder(tuple(m.channels), 2 * m.latent_dim)
    decoder = ConvDecoder(spec.image_shape, tuple(m.channels), out_ch)
  else:
    h, w, _ = spec.image_shape
    encoder = MLP(tuple(m.hidden), 2 * m.latent_dim, activation=nn.relu)
    decoder = ImageMLP(tuple(m.hidden)[::-1], h * w * out_ch, activation=nn.relu, image_hw=(h, w))
  return VAE(encoder=encoder, decoder=decoder, image_shape=spec.image_shape, latent_dim=m.latent_dim,
             likelihood=m.likelihood, beta=m.beta)


def make_vae_eval_fn(config, vae, workdir=None):
  """eval_fn(state, step): ELBO and IWAE(k) bits/dim of the EMA params on the whole held-out split; at the
  last step also writes reconstructions, prior samples and interpolations under workdir (if given)."""
  import jax
  import jax.numpy as jnp
  from jaxgen.data.tfds import load_split_numpy
  spec = get_dataset_spec(config.data.name)
  test = load_split_numpy(spec.name, spec.eval_split, config.data.get("data_dir"))["image"]
  e = config.eval
  k = e.num_iwae_samples
  elbo_fn = jax.jit(lambda p, x, r: vae.elbo_terms(p, x, r)["elbo"])
  iwae_fn = jax.jit(lambda p, x, r: vae.iwae_bound(p, x, r, k, chunk=min(e.iwae_chunk, k)))
  base = jax.random.PRNGKey(config.seed + 12345)      # fixed: the same binarisation / noise at every eval

  def eval_fn(state, step):
    params = state.ema_params
    elbo, iwae = [], []
    for i in range(0, len(test), e.batch_size):
      x = jnp.asarray(test[i:i + e.batch_size])
      r = jax.random.fold_in(base, i)
      elbo.append(np.asarray(elbo_fn(params, x, r)))
      iwae.append(np.asarray(iwae_fn(params, x, jax.random.fold_in(r, 1))))
    elbo, iwae = np.concatenate(elbo), np.concatenate(iwae)
    out = {"test_elbo_bpd": float(np.mean(vae.to_bits_per_dim(elbo))),
           f"test_iwae{k}_bpd": float(np.mean(vae.to_bits_per_dim(iwae))),
           "test_elbo_nats": float(-elbo.mean()), f"test_iwae{k}_nats": float(-iwae.mean())}
    if workdir is not None and step == config.num_train_steps and jax.process_index() == 0:
      write_vae_figures(vae, params, test, os.path.join(workdir, "figures"), seed=config.seed)
    return out

  return eval_fn


def write_vae_figures(vae, params, images, directory, *, seed=0, num=50):
  """reconstructions.png (rows: data, reconstruction, alternating), samples.png, interpolations.png."""
  import jax
  from jaxgen.train.images import save_image_grid
  rng = jax.random.PRNGKey(seed)
  x = images[:num]
  rec = np.asarray(jax.jit(vae.reconstruct)(params, x, rng))
  ncols = 10
  rows = []
  for i in range(0, num, ncols):
    rows += [x[i:i + ncols].astype(np.float32) / 127.5 - 1.0, rec[i:i + ncols]]
  save_image_grid(os.path.join(directory, "reconstructions.png"), np.concatenate(rows), ncols=ncols)
  samples = np.asarray(jax.jit(vae.sample, static_argnums=2)(params, jax.random.fold_in(rng, 1), 100))
  save_image_grid(os.path.join(directory, "samples.png"), samples, ncols=10)
  path = np.asarray(jax.jit(vae.interpolate, static_argnums=4)(params, images[:8], images[8:16], rng, 10))
  save_image_grid(os.path.join(directory, "interpolations.png"), path.reshape((-1,) + path.shape[2:]), ncols=10)
