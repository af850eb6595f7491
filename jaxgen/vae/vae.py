"""The VAE (Kingma & Welling 2013) as a model family: ELBO with a beta weight, the IWAE bound (Burda et al. 2015).

q(z | x) = N(mean, diag(exp(logvar))) from the encoder network (which outputs 2 * latent_dim features),
p(z) = N(0, I), p(x | z) one of `jaxgen.vae.likelihoods`. Training minimises
  -(E_q log p(x | z) - beta * KL(q(z | x) || p(z))) / D      (nats per dimension; one reparameterised sample)
and logs the beta = 1 ELBO in bits/dim. `iwae_bound` gives log (1/k) sum_j p(x, z_j) / q(z_j | x), z_j ~ q,
which is a tighter lower bound on log p(x) as k grows (k = 1 is the ELBO). Bits/dim are of 8-bit data with
the dequantisation of the likelihood (named in the docstring of `jaxgen.vae.likelihoods`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.vae import likelihoods

LOG_2PI = math.log(2 * math.pi)


def kl_to_standard_normal(mean, logvar) -> jnp.ndarray:
  """KL(N(mean, diag exp(logvar)) || N(0, I)) in closed form, summed over the last axis."""
  return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar, axis=-1)


def diag_normal_log_prob(z, mean, logvar) -> jnp.ndarray:
  return -0.5 * jnp.sum(jnp.square(z - mean) * jnp.exp(-logvar) + logvar + LOG_2PI, axis=-1)


@dataclasses.dataclass(frozen=True)
class VAE:
  encoder: nn.Module                     # x in [-1, 1] (B, H, W, C) -> (B, 2 * latent_dim)
  decoder: nn.Module                     # z (B, latent_dim) -> (B, H, W, num_params(likelihood) * C)
  image_shape: Tuple[int, int, int]
  latent_dim: int
  likelihood: str = "logistic"
  beta: float = 1.0

  @property
  def num_dims(self) -> int:
    return int(math.prod(self.image_shape))

  def init(self, rng, batch=None) -> Any:
    e_rng, d_rng = jax.random.split(rng)
    x = jnp.zeros((1,) + tuple(self.image_shape), jnp.float32)
    z = jnp.zeros((1, self.latent_dim), jnp.float32)
    return {"encoder": self.encoder.init(e_rng, x)["params"], "decoder": self.decoder.init(d_rng, z)["params"]}

  # -- the pieces -------------------------------------------------------------------------------------------
  def posterior(self, params, x_in):
    """(mean, logvar) of q(z | x), float32, each (B, latent_dim)."""
    h = self.encoder.apply({"params": params["encoder"]}, x_in).astype(jnp.float32)
    chex.assert_shape(h, (x_in.shape[0], 2 * self.latent_dim))
    return jnp.split(h, 2, axis=-1)

  def decode(self, params, z):
    return self.decoder.apply({"params": params["decoder"]}, z)

  def to_bits_per_dim(self, log_prob) -> jnp.ndarray:
    """Summed log-likelihood (nats) of one image -> bits/dim of the data, with the likelihood's offset."""
    return -(log_prob + likelihoods.log_prob_offset(self.likelihood, self.num_dims)) / (self.num_dims * math.log(2))

  def elbo_terms(self, params, images, rng):
    """Per-example reconstruction log p(x | z) (one reparameterised z), analytic KL and the ELBO, all (B,)."""
    data_rng, z_rng = jax.random.split(rng)
    x_in, target = likelihoods.prepare(self.likelihood, images, data_rng)
    mean, logvar = self.posterior(params, x_in)
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(z_rng, mean.shape)
    rec = likelihoods.log_prob(self.likelihood, self.decode(params, z), target)
    kl = kl_to_standard_normal(mean, logvar)
    return {"reconstruction": rec, "kl": kl, "elbo": rec - kl}

  def iwae_bound(self, params, images, rng, num_samples: int, chunk: int = 64):
    """Per-example importance-weighted bound log (1/k) sum_j w_j with k = num_samples, (B,) nats.

    One binarisation/dequantisation draw per image; the k latent samples are drawn in chunks of `chunk`.
    """
    if num_samples < 1:
      raise ValueError(f"num_samples={num_samples} must be >= 1")
    data_rng, z_rng = jax.random.split(rng)
    x_in, target = likelihoods.prepare(self.likelihood, images, data_rng)
    mean, logvar = self.posterior(params, x_in)
    chunk = min(chunk, num_samples)
    num_chunks = -(-num_samples // chunk)

    def log_weights(key):
      eps = jax.random.normal(key, (chunk,) + mean.shape)
      z = mean + jnp.exp(0.5 * logvar) * eps                                   # (chunk, B, L)
      rec = jax.vmap(lambda zz: likelihoods.log_prob(self.likelihood, self.decode(params, zz), target))(z)
      log_pz = -0.5 * jnp.sum(jnp.square(z) + LOG_2PI, axis=-1)
      return rec + log_pz - diag_normal_log_prob(z, mean, logvar)              # (chunk, B)

    logw = jax.lax.map(log_weights, jax.random.split(z_rng, num_chunks)).reshape(num_chunks * chunk, -1)
    logw = logw[:num_samples]
    return jax.nn.logsumexp(logw, axis=0) - math.log(num_samples)

  # -- the family interface ---------------------------------------------------------------------------------
  def loss(self, params, batch, rng):
    t = self.elbo_terms(params, batch["image"], rng)
    loss = -jnp.mean(t["reconstruction"] - self.beta * t["kl"]) / self.num_dims
    metrics = {"loss": loss, "elbo_bits_per_dim": jnp.mean(self.to_bits_per_dim(t["elbo"])),
               "reconstruction_nats": -jnp.mean(t["reconstruction"]), "kl_nats": jnp.mean(t["kl"])}
    return loss, metrics

  # -- as a first stage: a frozen autoencoder for diffusion on its latents (jaxgen.diffusion.codecs) -------------
  @property
  def latent_shape(self) -> Tuple[int, ...]:
    return (self.latent_dim,)

  def encode_latents(self, params, images):
    """Posterior means of uint8 `images` (B, latent_dim); deterministic (a Bernoulli decoder's input is the
    grey level itself, not a binarisation)."""
    x_in = jnp.asarray(images).astype(jnp.float32) / 127.5 - 1.0
    return self.posterior(params, x_in)[0]

  def decode_latents(self, params, z):
    """Decoder means of latents `z`: images in [-1, 1]."""
    return likelihoods.decoder_mean(self.likelihood, self.decode(params, z))

  def sample(self, params, rng, num: int, cond=None):
    """Decoder means of z ~ p(z): (num, H, W, C) in [-1, 1] (unconditional: `cond` must be None)."""
    if cond:
      raise ValueError(f"the VAE is unconditional but was given a condition with {sorted(cond)}")
    z = jax.random.normal(rng, (num, self.latent_dim))
    return likelihoods.decoder_mean(self.likelihood, self.decode(params, z))

  def reconstruct(self, params, images, rng):
    """Decoder means at the posterior means of uint8 `images` (rng: binarisation for the Bernoulli decoder)."""
    x_in, _ = likelihoods.prepare(self.likelihood, images, rng)
    mean, _ = self.posterior(params, x_in)
    return likelihoods.decoder_mean(self.likelihood, self.decode(params, mean))

  def interpolate(self, params, images_a, images_b, rng, num_steps: int = 8):
    """Decoder means along the straight line between the posterior means of a and b: (B, num_steps, H, W, C)."""
    za = self.posterior(params, likelihoods.prepare(self.likelihood, images_a, rng)[0])[0]
    zb = self.posterior(params, likelihoods.prepare(self.likelihood, images_b, rng)[0])[0]
    t = jnp.linspace(0.0, 1.0, num_steps)[None, :, None]
    z = ((1 - t) * za[:, None] + t * zb[:, None]).reshape(-1, self.latent_dim)
    out = likelihoods.decoder_mean(self.likelihood, self.decode(params, z))
    return out.reshape((za.shape[0], num_steps) + tuple(self.image_shape))
