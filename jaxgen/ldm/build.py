"""Build the first stage of latent diffusion (family 'ldm_autoencoder') from an ml_collections config;
`validate_ldm_autoencoder_config` runs first (no JAX import, nothing compiled).

Config fields read here: data.name; model.{block_out_channels, layers_per_block, latent_channels,
norm_num_groups, mid_block_add_attention} (jaxgen.nn.autoencoder_kl.AutoencoderKL's, diffusers' names) and,
optionally, model.{use_quant_conv, use_post_quant_conv} (bools, default true: a converted diffusers model without the
1x1 convs around the latent sets them false); the image channels are the data set's;
ldm.{reconstruction ('l1' | 'l2'), kl_weight (>= 0; the paper's 1e-6)}. The trainer reads the rest (see
experiments/ldm_autoencoder.py).
"""
from __future__ import annotations

import math

from jaxgen.data.specs import get_dataset_spec

RECONSTRUCTIONS = ("l1", "l2")


def validate_ldm_autoencoder_config(config) -> None:
  """ValueError naming the bad value."""
  spec = get_dataset_spec(config.data.name)
  if spec.kind != "image":
    raise ValueError(f"data.name={spec.name!r} holds {spec.kind}; the latent-diffusion autoencoder encodes images")
  m, l = config.model, config.ldm
  if l.reconstruction not in RECONSTRUCTIONS:
    raise ValueError(f"ldm.reconstruction={l.reconstruction!r}; choose one of: {', '.join(RECONSTRUCTIONS)}")
  if not (isinstance(l.kl_weight, (int, float)) and math.isfinite(l.kl_weight) and l.kl_weight >= 0):
    raise ValueError(f"ldm.kl_weight={l.kl_weight!r} must be a finite number >= 0 (the paper's: 1e-6)")
  chans = tuple(m.block_out_channels)
  if not chans or min(chans) < 1:
    raise ValueError(f"model.block_out_channels={chans} must be a non-empty list of positive widths")
  if not (isinstance(m.norm_num_groups, int) and m.norm_num_groups >= 1):
    raise ValueError(f"model.norm_num_groups={m.norm_num_groups!r} must be an int >= 1")
  bad = [c for c in chans if c % m.norm_num_groups]
  if bad:
    raise ValueError(f"model.block_out_channels={chans}: {bad[0]} is not divisible by "
                     f"model.norm_num_groups={m.norm_num_groups}")
  for name in ("layers_per_block", "latent_channels"):
    if not (isinstance(m[name], int) and m[name] >= 1):
      raise ValueError(f"model.{name}={m[name]!r} must be an int >= 1")
  for name in ("use_quant_conv", "use_post_quant_conv"):
    if not isinstance(m.get(name, True), bool):
      raise ValueError(f"model.{name}={m.get(name)!r} must be true or false")
  f = 2 ** (len(chans) - 1)
  h, w, _ = spec.image_shape
  if h % f or w % f:
    raise ValueError(f"model.block_out_channels={chans} downsample by f={f}, which does not divide "
                     f"{spec.name}'s {h}x{w} images (use fewer levels)")


def make_ldm_autoencoder(config):
  """Assumes a validated config."""
  from jaxgen.ldm.autoencoder import LDMAutoencoder
  from jaxgen.nn.autoencoder_kl import AutoencoderKL
  spec = get_dataset_spec(config.data.name)
  m = config.model
  c = spec.image_shape[-1]
  network = AutoencoderKL(in_channels=c, out_channels=c, block_out_channels=tuple(m.block_out_channels),
                          layers_per_block=m.layers_per_block, latent_channels=m.latent_channels,
                          norm_num_groups=m.norm_num_groups, mid_block_add_attention=m.mid_block_add_attention,
                          use_quant_conv=m.get("use_quant_conv", True),
                          use_post_quant_conv=m.get("use_post_quant_conv", True))
  return LDMAutoencoder(network=network, image_shape=tuple(spec.image_shape), reconstruction=config.ldm.reconstruction,
                        kl_weight=float(config.ldm.kl_weight))
