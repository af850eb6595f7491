"""DDPM (Ho et al. 2020) as a model family for the shared trainer, with its later refinements.

The method is a frozen dataclass holding its static settings and its network; its functions are pure
functions of a params pytree. The trainer calls `init`, differentiates `loss` and calls `sample` for grids
(jaxgen.train.family). Settings are validated from the config (jaxgen.diffusion.build) before it is built.

- `prediction`: the network predicts eps, x0 or v; `loss_weighting` (+ `min_snr_gamma`) weights the loss
  (jaxgen.diffusion.parameterisation).
- `num_classes > 0`: class-conditional; in training a label is replaced by the null class `num_classes` with
  probability `label_dropout`, and sampling applies classifier-free guidance (Ho & Salimans 2022) with scale w:
  eps = (1 + w) eps(x, c) - w eps(x, null); w = 0 is the plain conditional model.
- `sample` runs the sampler named by `sampler` ('ancestral' or 'ddim') over `sample_steps` timesteps spaced by
  `timestep_spacing` (jaxgen.diffusion.samplers); each can be overridden per call.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.data.image import uint8_to_signed_unit
from jaxgen.diffusion import gaussian, parameterisation, samplers, vlb
from jaxgen.diffusion.schedules import DiffusionSchedule
from jaxgen.train.family import grid_labels


@dataclasses.dataclass(frozen=True)
class DDPM:
  network: nn.Module                 # network(x_t, t[, labels], train=...) -> prediction, e.g. jaxgen.nn.UNet
  schedule: DiffusionSchedule
  image_shape: Tuple[int, int, int]  # (H, W, C)
  variance: str = "fixed_large"      # ancestral sampler variance, see jaxgen.diffusion.samplers
  clip_x0: bool = True               # clip the predicted x_0 to [-1, 1] while sampling
  prediction: str = "eps"            # 'eps' | 'x0' | 'v'
  loss_weighting: str = "simple"     # 'simple' | 'snr' | 'min_snr'
  min_snr_gamma: float = 5.0
  num_classes: int = 0               # > 0: class-conditional (labels from batch['label'])
  label_dropout: float = 0.1         # probability of training on the null class (classifier-free guidance)
  sampler: str = "ancestral"         # the defaults of `sample`
  sample_steps: int = 0              # 0: all T
  timestep_spacing: str = "even"
  eta: float = 0.0
  guidance: float = 0.0

  def init(self, rng, batch=None) -> Any:
    """Network parameters; only the image shape matters, so `batch` may be None."""
    x = jnp.zeros((1,) + tuple(self.image_shape), jnp.float32)
    t = jnp.zeros((1,), jnp.int32)
    labels = jnp.zeros((1,), jnp.int32) if self.num_classes else None
    return self.network.init({"params": rng}, x, t, labels, train=False)["params"]

  def network_fn(self, params, labels=None, *, train: bool = False, rng=None):
    """(x_t, t) -> the network's raw prediction (eps, x0 or v)."""
    def fn(xt, t):
      rngs = {"dropout": rng} if train else None
      return self.network.apply({"params": params}, xt, t, labels, train=train, rngs=rngs)
    return fn

  def model_fn(self, params, labels=None, guidance: float = 0.0):
    """The samplers' model_fn(x_t, t) -> (eps, x0); conditional with guidance w != 0: the guided prediction,
    with the conditional and unconditional passes in one batch of 2B."""
    if not self.num_classes:
      return parameterisation.model_fn(self.schedule, self.prediction, self.network_fn(params))
    if labels is None:
      raise ValueError(f"a class-conditional DDPM (num_classes={self.num_classes}) samples with labels")
    labels = jnp.asarray(labels, jnp.int32)
    if guidance == 0:
      return parameterisation.model_fn(self.schedule, self.prediction, self.network_fn(params, labels))
    null = jnp.full_like(labels, self.num_classes)
    both = parameterisation.model_fn(self.schedule, self.prediction,
                                     self.network_fn(params, jnp.concatenate([labels, null])))

    def fn(xt, t):
      eps, x0 = both(jnp.concatenate([xt, xt]), jnp.concatenate([t, t]))
      b = xt.shape[0]
      mix = lambda v: (1.0 + guidance) * v[:b] - guidance * v[b:]    # noqa: E731
      return mix(eps), mix(x0)
    return fn

  def _labels(self, batch, rng, train: bool):
    if not self.num_classes:
      return None
    labels = jnp.asarray(batch["label"], jnp.int32)
    if train and self.label_dropout > 0:
      drop = jax.random.bernoulli(rng, self.label_dropout, labels.shape)
      labels = jnp.where(drop, self.num_classes, labels)
    return labels

  def loss(self, params, batch, rng, *, train: bool = True):
    """The weighted regression loss of the chosen parameterisation on a batch {'image': uint8 (B, H, W, C)
    [, 'label']}; with eps prediction and 'simple' weighting it is L_simple. Returns (loss, metrics)."""
    x0 = uint8_to_signed_unit(batch["image"])
    t_rng, n_rng, dropout_rng, label_rng = jax.random.split(rng, 4)
    t = jax.random.randint(t_rng, (x0.shape[0],), 0, self.schedule.num_timesteps)
    noise = jax.random.normal(n_rng, x0.shape, jnp.float32)
    xt = gaussian.q_sample(self.schedule, x0, t, noise)
    labels = self._labels(batch, label_rng, train)
    out = self.network_fn(params, labels, train=train, rng=dropout_rng)(xt, t).astype(jnp.float32)
    target = parameterisation.target(self.schedule, self.prediction, x0, noise, t)
    per_example = jnp.mean(jnp.square(out - target), axis=tuple(range(1, x0.ndim)))
    weights = parameterisation.loss_weights(self.schedule, self.prediction, self.loss_weighting, self.min_snr_gamma)
    loss = jnp.mean(jnp.take(jnp.asarray(weights), t) * per_example)
    return loss, {"loss": loss}

  def timesteps(self, steps: Optional[int] = None, spacing: Optional[str] = None):
    return samplers.timestep_subsequence(self.schedule.num_timesteps, self.sample_steps if steps is None else steps,
                                         self.timestep_spacing if spacing is None else spacing)

  def sample(self, params, rng, num: int, labels=None, *, sampler: Optional[str] = None,
             steps: Optional[int] = None, spacing: Optional[str] = None, eta: Optional[float] = None,
             guidance: Optional[float] = None, variance: Optional[str] = None):
    """`num` images in [-1, 1]; conditional: `labels` (N,), by default classes in equal consecutive runs
    (jaxgen.train.family.grid_labels). Unset options take the family's defaults."""
    if self.num_classes and labels is None:
      labels = grid_labels(num, self.num_classes)
    shape = (num,) + tuple(self.image_shape)
    model = self.model_fn(params, labels, self.guidance if guidance is None else guidance)
    x = samplers.sample(self.schedule, model, rng, shape, sampler=sampler or self.sampler,
                        timesteps=self.timesteps(steps, spacing), eta=self.eta if eta is None else eta,
                        variance=variance or self.variance, clip_x0=self.clip_x0)
    return jnp.clip(x, -1.0, 1.0)

  def encode(self, params, images, labels=None, *, steps: Optional[int] = None, spacing: Optional[str] = None):
    """DDIM inversion of images in [-1, 1] to x_T (jaxgen.diffusion.samplers.ddim_encode); conditional: the
    images' labels (no guidance)."""
    model = self.model_fn(params, labels, 0.0)
    return samplers.ddim_encode(self.schedule, model, images, timesteps=self.timesteps(steps, spacing))

  def decode(self, params, x_T, labels=None, *, steps: Optional[int] = None, spacing: Optional[str] = None):
    """The deterministic DDIM map x_T -> x_0 that `encode` inverts (no clipping, no guidance)."""
    model = self.model_fn(params, labels, 0.0)
    return samplers.ddim_sample(self.schedule, model, None, x_T.shape, timesteps=self.timesteps(steps, spacing),
                                eta=0.0, clip_x0=False, x_T=x_T)

  def vlb(self, params, batch, rng) -> Dict[str, jnp.ndarray]:
    """The variational bound's terms per example (jaxgen.diffusion.vlb) on {'image' uint8[, 'label']}; a
    conditional model is scored with the true labels (no guidance)."""
    x0 = uint8_to_signed_unit(batch["image"])
    labels = self._labels(batch, None, train=False)
    model = parameterisation.model_fn(self.schedule, self.prediction, self.network_fn(params, labels))
    return vlb.vlb_terms(self.schedule, model, x0, rng, variance=self.variance)
