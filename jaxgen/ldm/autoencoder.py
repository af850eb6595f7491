"""The first stage of latent diffusion (Rombach et al. 2022) as a model family: the KL-regularised autoencoder.

Training minimises, per image x in [-1, 1] with z ~ q(z | x) drawn with the step's rng (reparameterised),
  loss = sum_pixels |x - D(z)|  (or squared: ldm.reconstruction='l2')  +  kl_weight * KL(q(z | x) || N(0, I))
averaged over the batch: both terms summed over the image / latent as in the paper's LPIPSWithDiscriminator
(rec_loss summed, kl_loss summed, each divided by the batch size), so kl_weight = 1e-6 means what it means there.
The paper adds a perceptual (LPIPS) term and, after a warm-up, a patch discriminator with hinge loss: neither is
here yet (docs/latent_diffusion.md). Logged: loss; reconstruction, the per-pixel mean of the same error;
kl, nats per image; psnr, dB of the reconstruction from the sampled z (clipped to [-1, 1], peak-to-peak 2).

It does not sample (it is not a generative model on its own: no `sample`); as a first stage it gives the
autoencoder API of jaxgen.diffusion.codecs.FrozenAutoencoderCodec: `latent_shape` (H/f, W/f, latent_channels),
`encode_latents` (posterior means of uint8 images) and `decode_latents` (images in [-1, 1]).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Tuple

import jax
import jax.numpy as jnp

from jaxgen.nn.autoencoder_kl import kl_divergence, sample_posterior


def psnr(x, y) -> jnp.ndarray:
  """Per-image PSNR (dB) of images in [-1, 1] (peak-to-peak 2): 10 log10(4 / mse), (B,)."""
  mse = jnp.mean(jnp.square(x - y), axis=tuple(range(1, x.ndim)))
  return 10.0 * jnp.log10(4.0 / jnp.maximum(mse, 1e-12))


@dataclasses.dataclass(frozen=True)
class LDMAutoencoder:
  network: Any                                 # jaxgen.nn.autoencoder_kl.AutoencoderKL
  image_shape: Tuple[int, int, int]
  reconstruction: str = "l1"                   # 'l1' | 'l2'
  kl_weight: float = 1e-6

  def init(self, rng, batch=None) -> Any:
    x = jnp.zeros((1,) + tuple(self.image_shape), jnp.float32)
    return self.network.init(rng, x)["params"]

  # -- the pieces -------------------------------------------------------------------------------------------
  def posterior(self, params, x):
    """(mean, logvar) of q(z | x) for x in [-1, 1], each (B, H/f, W/f, latent_channels)."""
    return self.network.apply({"params": params}, x, method=self.network.encode)

  def decode(self, params, z):
    return self.network.apply({"params": params}, z, method=self.network.decode)

  def reconstruct(self, params, images):
    """Decoder outputs at the posterior means of uint8 `images`, clipped to [-1, 1]."""
    return jnp.clip(self.decode_latents(params, self.encode_latents(params, images)), -1.0, 1.0)

  # -- the family interface ---------------------------------------------------------------------------------
  def loss(self, params, batch, rng):
    x = jnp.asarray(batch["image"]).astype(jnp.float32) / 127.5 - 1.0
    mean, logvar = self.posterior(params, x)
    rec = self.decode(params, sample_posterior(rng, mean, logvar)).astype(jnp.float32)
    err = jnp.abs(x - rec) if self.reconstruction == "l1" else jnp.square(x - rec)
    axes = tuple(range(1, x.ndim))
    rec_sum = jnp.sum(err, axis=axes)
    kl = kl_divergence(mean.astype(jnp.float32), logvar.astype(jnp.float32))
    loss = jnp.mean(rec_sum + self.kl_weight * kl)
    metrics = {"loss": loss, "reconstruction": jnp.mean(err), "kl": jnp.mean(kl),
               "psnr": jnp.mean(psnr(x, jnp.clip(rec, -1.0, 1.0)))}
    return loss, metrics

  # -- as a first stage (jaxgen.diffusion.codecs.FrozenAutoencoderCodec) -------------------------------------
  @property
  def latent_shape(self) -> Tuple[int, int, int]:
    f = self.network.downsample_factor
    h, w, _ = self.image_shape
    return (h // f, w // f, self.network.latent_channels)

  def encode_latents(self, params, images):
    """Posterior means of uint8 `images`: (B, H/f, W/f, latent_channels), deterministic."""
    x = jnp.asarray(images).astype(jnp.float32) / 127.5 - 1.0
    return self.posterior(params, x)[0].astype(jnp.float32)

  def decode_latents(self, params, z):
    """The decoder's images of latents `z`, in [-1, 1] up to the network's overshoot (the codec clips)."""
    return self.decode(params, z).astype(jnp.float32)
