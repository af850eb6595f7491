"""A GAN (Goodfellow et al. 2014) as a model family for the shared trainer: both players in one compiled step.

params = {'generator': variables, 'discriminator': variables}, each a flax variables dict: 'params' (trained)
and, for spectrally normalised discriminators, 'spectral' (power-iteration vectors, refined by the D forward
pass). The players are two parameter groups of the trainer's optimizer ('generator', 'discriminator': their
learning rates, betas, warm-up and clipping in config.optim.groups); the spectral vectors are 'buffer' leaves.
`update` is the trainer's multi-step hook: D on (real, G(z)) through `opt.optimize(..., groups=
('discriminator',))`, then G against the *updated* D; the trainer then runs the EMA of all params
(state.ema_params['generator'] is the EMA generator used for samples) and the step counter.
Images travel as uint8 ({'image'}; scaled to [-1, 1] here), 2-D toy data as float ({'points'}).
Settings are validated from the config (jaxgen.gan.build) before the family is built.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.data.image import uint8_to_signed_unit
from jaxgen.gan import losses, regularisers
from jaxgen.train.family import grid_labels
from jaxgen.train.optim import BUFFER

PLAYERS = ("generator", "discriminator")


@dataclasses.dataclass(frozen=True)
class GAN:
  generator: nn.Module                   # (z, [labels]) -> samples
  discriminator: nn.Module               # (x, [labels]) -> logits (B,)
  data_shape: Tuple[int, ...]            # (H, W, C) for images, (2,) for toy points
  latent_dim: int
  loss: str = "non_saturating"
  gp_weight: float = 0.0                 # WGAN-GP lambda (10 in the paper); 0 disables
  r1_gamma: float = 0.0                  # R1 weight gamma (loss += gamma / 2 * R1); 0 disables
  num_classes: int = 0                   # > 0: class-conditional G and D (labels from batch['label'])
  truncation: float = 0.0                # > 0: sample z from N(0, I) truncated to [-t, t] at sampling time

  param_groups = PLAYERS

  @property
  def is_image(self) -> bool:
    return len(self.data_shape) == 3

  def param_labels(self, params):
    """Each player's 'params' collection is its group; every other collection (spectral vectors) a buffer."""
    return {player: {col: jax.tree.map(lambda _, p=player, c=col: p if c == "params" else BUFFER, leaves)
                     for col, leaves in params[player].items()} for player in PLAYERS}

  # -- players ----------------------------------------------------------------------------------------------
  def _cond(self, labels):
    return (labels,) if self.num_classes else ()

  def generate(self, g_vars, z, labels=None):
    return self.generator.apply(g_vars, z, *self._cond(labels))

  def discriminate(self, d_vars, x, labels=None, *, update_spectral: bool = False):
    """Logits (B,), and the variables with refined spectral vectors when `update_spectral`."""
    if update_spectral and "spectral" in d_vars:
      logits, mutated = self.discriminator.apply(d_vars, x, *self._cond(labels), mutable=["spectral"])
      return logits, {**d_vars, **mutated}
    return self.discriminator.apply(d_vars, x, *self._cond(labels)), d_vars

  def latents(self, rng, num: int, *, truncation: float = 0.0):
    if truncation > 0:
      return jax.random.truncated_normal(rng, -truncation, truncation, (num, self.latent_dim))
    return jax.random.normal(rng, (num, self.latent_dim))

  def init(self, rng, batch=None) -> Any:
    g_rng, d_rng = jax.random.split(rng)
    z = jnp.zeros((2, self.latent_dim), jnp.float32)
    labels = jnp.zeros((2,), jnp.int32)
    g_vars = dict(self.generator.init(g_rng, z, *self._cond(labels)))
    d_vars = dict(self.discriminator.init(d_rng, jnp.zeros((2,) + tuple(self.data_shape)), *self._cond(labels)))
    return {"generator": g_vars, "discriminator": d_vars}

  # -- the train step (the trainer's multi-step hook) ---------------------------------------------------------
  def _inputs(self, batch):
    if self.is_image:
      return uint8_to_signed_unit(batch["image"])
    return jnp.asarray(batch["points"], jnp.float32)

  @staticmethod
  def _player_grads(params, player, grads):
    """A params-shaped gradient tree holding `grads` for the player's 'params' and zeros elsewhere."""
    full = jax.tree.map(jnp.zeros_like, params)
    full[player] = {**full[player], "params": grads}
    return full

  def update(self, state, batch, rng, opt):
    real = self._inputs(batch)
    labels = jnp.asarray(batch["label"], jnp.int32) if self.num_classes else None
    n = real.shape[0]
    z_d_rng, z_g_rng, gp_rng = jax.random.split(rng, 3)
    g_vars, d_vars = state.params["generator"], state.params["discriminator"]

    # 1. the discriminator, against a fixed generator
    fake = jax.lax.stop_gradient(self.generate(g_vars, self.latents(z_d_rng, n), labels))

    def d_loss_fn(d_params):
      dv = {**d_vars, "params": d_params}
      real_logits, dv = self.discriminate(dv, real, labels, update_spectral=True)
      fake_logits, _ = self.discriminate(dv, fake, labels)
      loss, m = losses.discriminator_loss(self.loss, real_logits, fake_logits)
      d_fn = lambda x: self.discriminate(dv, x, labels)[0]   # noqa: E731
      if self.gp_weight:
        m["gradient_penalty"] = regularisers.gradient_penalty(d_fn, real, fake, gp_rng)
        loss = loss + self.gp_weight * m["gradient_penalty"]
      if self.r1_gamma:
        m["r1"] = regularisers.r1_penalty(d_fn, real)
        loss = loss + 0.5 * self.r1_gamma * m["r1"]
      m.update(d_loss=loss, d_real_logit=jnp.mean(real_logits), d_fake_logit=jnp.mean(fake_logits))
      return loss, (m, dv)

    (_, (d_metrics, refined)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_vars["params"])
    state = opt.refresh_buffers(state, {**state.params, "discriminator": refined})
    state = opt.optimize(state, self._player_grads(state.params, "discriminator", d_grads),
                                groups=("discriminator",))

    # 2. the generator, against the updated discriminator
    d_vars = state.params["discriminator"]

    def g_loss_fn(g_params):
      x = self.generate({**g_vars, "params": g_params}, self.latents(z_g_rng, n), labels)
      return losses.generator_loss(self.loss, self.discriminate(d_vars, x, labels)[0])

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(g_vars["params"])
    state = opt.optimize(state, self._player_grads(state.params, "generator", g_grads), groups=("generator",))
    return state, dict(d_metrics, g_loss=g_loss)

  # -- sampling ---------------------------------------------------------------------------------------------
  def sample(self, params, rng, num: int, labels: Optional[jnp.ndarray] = None,
             truncation: Optional[float] = None):
    """`num` generator outputs (pass EMA params for the EMA generator); conditional: `labels` (N,), by default
    classes in equal consecutive runs (jaxgen.train.family.grid_labels)."""
    t = self.truncation if truncation is None else truncation
    if self.num_classes and labels is None:
      labels = grid_labels(num, self.num_classes)
    return self.generate(params["generator"], self.latents(rng, num, truncation=t), labels)
