"""How a diffusion family's data become the tensor it diffuses, and back: one encode/decode pair per kind.

The DDPM family's maths (schedules, parameterisations, losses, samplers, guidance, the bound) never look at
what the data are: the family is given a codec, and
  encode(params, batch) -> x0      float32 (B, *event_shape), what the diffusion runs on (inside the step)
  decode(params, x) -> samples     what `sample` returns: images in [-1, 1] (N, H, W, C) or vectors (N, D)
`params` are the family's whole params (a frozen part lives under its name there, jaxgen.train.frozen).
  bounded       x0 lies in [-1, 1]: samplers may clip the predicted x0 (DDPM's clip_x0); else they never do
  bins          > 0: x0 is `bins`-level quantised data in [-1, 1] (8-bit images: 256), so the bound's decoder
                term is a discretised Gaussian and bits/dim are of the discrete data; 0: continuous data, the
                decoder term is a Gaussian density and the bound is in nats of a continuous density
Codecs: ImageCodec (uint8 <-> [-1, 1]), VectorCodec (float features such as 2-D points, identity),
FrozenAutoencoderCodec (the latents of a frozen autoencoder run: encode its posterior means times `scale`,
decode through its decoder), ClipImageCodec (a frozen CLIP run's image embeddings at norm sqrt(D): unCLIP's
prior).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Tuple

import jax.numpy as jnp

from jaxgen.data.image import uint8_to_signed_unit


@dataclasses.dataclass(frozen=True)
class ImageCodec:
  event_shape: Tuple[int, ...]           # (H, W, C)
  feature: str = "image"
  bounded = True
  bins = 256

  def encode(self, params, batch):
    return uint8_to_signed_unit(batch[self.feature])

  def decode(self, params, x):
    return jnp.clip(x, -1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class VectorCodec:
  event_shape: Tuple[int, ...]           # (D,)
  feature: str = "points"
  bounded = False
  bins = 0

  def encode(self, params, batch):
    return jnp.asarray(batch[self.feature], jnp.float32)

  def decode(self, params, x):
    return x


@dataclasses.dataclass(frozen=True)
class FrozenAutoencoderCodec:
  """Diffusion in the latent space of a frozen autoencoder family held under params[part] (its EMA params,
  restored from another run). The autoencoder gives `latent_shape`, `encode_latents(params, uint8 images)`
  (posterior means) and `decode_latents(params, latents)` (images in [-1, 1])."""
  autoencoder: Any
  part: str = "autoencoder"
  scale: float = 1.0                     # latents are multiplied by it (1 / their std: unit-variance data)
  feature: str = "image"
  bounded = False
  bins = 0

  @property
  def event_shape(self) -> Tuple[int, ...]:
    return tuple(self.autoencoder.latent_shape)

  def encode(self, params, batch):
    """scale * the posterior means of batch['image']; a batch that holds them already as batch['latent']
    (unscaled, cached once: jaxgen.ldm.cache) skips the encoder."""
    if "latent" in batch:
      return self.scale * jnp.asarray(batch["latent"], jnp.float32)
    return self.scale * self.autoencoder.encode_latents(params[self.part], batch[self.feature])

  def decode(self, params, x):
    return jnp.clip(self.autoencoder.decode_latents(params[self.part], x / self.scale), -1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class ClipImageCodec:
  """Diffusion over CLIP image embeddings (unCLIP's prior): x0 = sqrt(D) * the frozen CLIP's (params[part])
  unit-norm embedding of batch['image'] (jaxgen.conditioners.clip_scale: about unit variance per
  coordinate); a sample is decoded by renormalising it to norm sqrt(D), the decoder's condition as it stands."""
  clip: Any                              # jaxgen.clip.model.CLIP
  part: str = "clip"
  feature: str = "image"
  bounded = False
  bins = 0

  @property
  def event_shape(self) -> Tuple[int, ...]:
    return (self.clip.model.embed_dim,)

  def encode(self, params, batch):
    """sqrt(D) * the unit image embedding of batch['image']; a batch that holds it already as
    batch['image_embedding'] (cached once: jaxgen.unclip.cache) skips the image tower."""
    from jaxgen.conditioners import clip_scale
    if "image_embedding" in batch:
      return clip_scale(self.event_shape[0]) * jnp.asarray(batch["image_embedding"], jnp.float32)
    emb = self.clip.encode_images(params[self.part], jnp.asarray(batch[self.feature]))
    return clip_scale(self.event_shape[0]) * emb.astype(jnp.float32)

  def decode(self, params, x):
    from jaxgen.conditioners import clip_scale
    norm = jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=-1, keepdims=True), 1e-12))
    return clip_scale(self.event_shape[0]) * x / norm
