"""A GAN (Goodfellow et al. 2014) as a model family for the shared trainer: both players in one compiled step.

params = {'generator': variables, 'discriminator': variables}, each a flax variables dict: 'params' (trained)
and, for spectrally normalised discriminators, 'spectral' (power-iteration vectors, refined in the D update).
`make_optimizer` returns one transformation whose state holds both players' Adam states, so the trainer's
checkpoints and resume cover both. `train_step` updates D on (real, G(z)), then G against the *updated* D,
then the EMA of all params (state.ema_params['generator'] is the EMA generator used for samples).
Images travel as uint8 ({'image'}; scaled to [-1, 1] here), 2-D toy data as float ({'x'}).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen.data.image import uint8_to_signed_unit
from jaxgen.gan import losses, regularisers


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
  g_learning_rate: float = 2e-4
  d_learning_rate: float = 2e-4
  b1: float = 0.5
  b2: float = 0.999

  def __post_init__(self):
    losses.check_loss(self.loss)
    for name in ("gp_weight", "r1_gamma", "truncation"):
      v = getattr(self, name)
      if not (v >= 0 and math.isfinite(v)):
        raise ValueError(f"{name}={v} must be a finite number >= 0")
    for name in ("g_learning_rate", "d_learning_rate"):
      if not getattr(self, name) > 0:
        raise ValueError(f"{name}={getattr(self, name)} must be > 0")
    if self.latent_dim < 1 or self.num_classes < 0:
      raise ValueError(f"latent_dim={self.latent_dim} must be >= 1 and num_classes={self.num_classes} >= 0")

  @property
  def is_image(self) -> bool:
    return len(self.data_shape) == 3

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

  # -- optimisation -----------------------------------------------------------------------------------------
  def player_optimizers(self):
    return (optax.adam(self.g_learning_rate, b1=self.b1, b2=self.b2),
            optax.adam(self.d_learning_rate, b1=self.b1, b2=self.b2))

  def make_optimizer(self, config=None) -> optax.GradientTransformation:
    """Both players' Adams in one transformation over the params tree (only 'params' collections train)."""
    g_tx, d_tx = self.player_optimizers()

    def init(params):
      return {"generator": g_tx.init(params["generator"]["params"]),
              "discriminator": d_tx.init(params["discriminator"]["params"])}

    def update(grads, state, params=None):
      updates, new_state = {}, {}
      for name, tx in (("generator", g_tx), ("discriminator", d_tx)):
        u, new_state[name] = tx.update(grads[name]["params"], state[name], params[name]["params"])
        zeros = jax.tree.map(jnp.zeros_like, grads[name])
        updates[name] = {**zeros, "params": u}
      return updates, new_state

    return optax.GradientTransformation(init, update)

  def _inputs(self, batch):
    if self.is_image:
      return uint8_to_signed_unit(batch["image"])
    return jnp.asarray(batch["x"], jnp.float32)

  def train_step(self, state, batch, rng):
    real = self._inputs(batch)
    labels = jnp.asarray(batch["label"], jnp.int32) if self.num_classes else None
    n = real.shape[0]
    z_d_rng, z_g_rng, gp_rng = jax.random.split(rng, 3)
    g_tx, d_tx = self.player_optimizers()
    g_vars, d_vars = state.params["generator"], state.params["discriminator"]

    # 1. the discriminator, against a fixed generator
    fake = jax.lax.stop_gradient(self.generate(g_vars, self.latents(z_d_rng, n), labels))

    def d_loss_fn(d_params):
      dv = {**d_vars, "params": d_params}
      real_logits, dv = self.discriminate(dv, real, labels, update_spectral=True)
      fake_logits, _ = self.discriminate(dv, fake, labels)
      loss, m = losses.discriminator_loss(self.loss, real_logits, fake_logits)
      d_fn = lambda x: self.discriminate(dv, x, labels)[0]
      if self.gp_weight:
        m["gradient_penalty"] = regularisers.gradient_penalty(d_fn, real, fake, gp_rng)
        loss = loss + self.gp_weight * m["gradient_penalty"]
      if self.r1_gamma:
        m["r1"] = regularisers.r1_penalty(d_fn, real)
        loss = loss + 0.5 * self.r1_gamma * m["r1"]
      m.update(d_loss=loss, d_real_logit=jnp.mean(real_logits), d_fake_logit=jnp.mean(fake_logits))
      return loss, (m, dv)

    (_, (d_metrics, d_vars)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_vars["params"])
    d_updates, d_opt = d_tx.update(d_grads, state.opt_state["discriminator"], d_vars["params"])
    d_vars = {**d_vars, "params": optax.apply_updates(d_vars["params"], d_updates)}

    # 2. the generator, against the updated discriminator
    def g_loss_fn(g_params):
      x = self.generate({**g_vars, "params": g_params}, self.latents(z_g_rng, n), labels)
      return losses.generator_loss(self.loss, self.discriminate(d_vars, x, labels)[0])

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(g_vars["params"])
    g_updates, g_opt = g_tx.update(g_grads, state.opt_state["generator"], g_vars["params"])
    g_vars = {**g_vars, "params": optax.apply_updates(g_vars["params"], g_updates)}

    # 3. EMA of both players (the trainer's TrainState.apply_gradients rule), one step
    params = {"generator": g_vars, "discriminator": d_vars}
    d = state.ema_decay
    ema = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, state.ema_params, params)
    new_state = state.replace(step=state.step + 1, params=params, ema_params=ema,
                              opt_state={"generator": g_opt, "discriminator": d_opt})
    metrics = dict(d_metrics, loss=d_metrics["d_loss"], g_loss=g_loss,
                   d_grad_norm=optax.tree.norm(d_grads), g_grad_norm=optax.tree.norm(g_grads))
    return new_state, metrics

  # -- sampling ---------------------------------------------------------------------------------------------
  def sample_labels(self, num: int):
    """Class of sample i: classes in equal consecutive runs (rows of a grid with num / num_classes columns)."""
    return (jnp.arange(num) * max(self.num_classes, 1)) // num

  def generate_samples(self, params, rng, num: int, labels: Optional[jnp.ndarray] = None,
                       truncation: Optional[float] = None):
    t = self.truncation if truncation is None else truncation
    if self.num_classes and labels is None:
      labels = self.sample_labels(num)
    return self.generate(params["generator"], self.latents(rng, num, truncation=t), labels)

  def sample(self, params, rng, num: int):
    """`num` generator outputs (pass EMA params for the EMA generator); conditional: classes in runs."""
    return self.generate_samples(params, rng, num)
