"""Build a VAE from an ml_collections config; `validate_vae_config` runs first (nothing compiled).

Config fields read here: data.name, model.{kind ('mlp' | 'conv'), latent_dim, hidden, channels, likelihood,
beta}. The held-out evaluation's eval.{num_iwae_samples, iwae_chunk, batch_size} are checked by its own
validator (jaxgen.eval.config.validate_vae_heldout, evaluation jaxgen.eval.likelihood.make_vae_heldout_eval); the
trainer reads the rest (see experiments/vae_digits.py).
"""
from __future__ import annotations

import math

from jaxgen.data.specs import get_dataset_spec
from jaxgen.vae import likelihoods

KINDS = ("mlp", "conv")


def validate_vae_config(config) -> None:
  """ValueError naming the bad value."""
  from jaxgen.nn.convnets import check_conv_shape
  spec = get_dataset_spec(config.data.name)
  if spec.kind != "image":
    raise ValueError(f"data.name={spec.name!r} holds {spec.kind}; the VAEs model images")
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


def make_vae(config):
  import flax.linen as nn
  from jaxgen.nn.convnets import ConvDecoder, ConvEncoder
  from jaxgen.nn.mlp import ImageMLP, MLP
  from jaxgen.vae.vae import VAE
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
