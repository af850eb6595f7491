"""A normalizing flow as a model family for the shared trainer: exact likelihood, latents, sampling.

`FlowModel` holds a bijector from data space to a standard-normal latent eps (B, D) (a `MultiScale` for
images, a `Chain`/`Repeat` of couplings for 2-D points) and the data's preprocessing. Images: the loss is
bits/dim of uniformly dequantised 8-bit data (jaxgen.flows.dequantize names the formula, including the
Jacobian of the preprocessing); 2-D points: the loss is the negative log-likelihood in nats.
Using the latent: `encode`/`decode` (images at the centre of their bins), `sample(..., temperature=)`,
and, with num_classes > 0, `class_log_likelihoods` for the Bayes classifier of jaxgen.flows.classifier.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Tuple

import jax
import jax.numpy as jnp

from jaxgen.flows import dequantize as dq
from jaxgen.flows.glow import CONSTANT_KEYS
from jaxgen import conditions
from jaxgen.conditions import grid_labels
from jaxgen.train.optim import DEFAULT_GROUP, FROZEN


@dataclasses.dataclass(frozen=True)
class FlowModel:
  bijector: Any
  event_shape: Tuple[int, ...]           # (H, W, C) for images, (2,) for points
  preprocessing: Optional[str] = None    # 'shift' | 'logit' for images; None for real-valued points
  logit_alpha: float = 0.05
  num_classes: int = 0                   # > 0: class-dependent prior, batches need 'label'
  num_bins: int = dq.NUM_BINS            # images: the data's grey levels (dequantize.quantize)

  @property
  def is_image(self) -> bool:
    return self.preprocessing is not None

  @property
  def num_dims(self) -> int:
    return math.prod(self.event_shape)

  def _labels(self, batch):
    return jnp.asarray(batch["label"], jnp.int32) if self.num_classes else None

  # --- data space <-> flow space -------------------------------------------------------------------------
  def to_flow_space(self, data, rng=None):
    """uint8 images -> (y, log|det|) with uniform dequantisation (rng) or at bin centres (rng=None);
    points are returned as they are."""
    if not self.is_image:
      x = jnp.asarray(data, jnp.float32)
      return x, jnp.zeros((x.shape[0],), jnp.float32)
    if rng is not None:
      x_tilde = dq.uniform_dequantize(data, rng, self.num_bins)
    else:
      x_tilde = dq.quantize(data, self.num_bins) + 0.5
    return dq.preprocess(x_tilde, self.preprocessing, self.logit_alpha, self.num_bins)

  def from_flow_space(self, y):
    """Flow space -> images in [-1, 1] (bin centres land on the data's values; points are unchanged)."""
    if not self.is_image:
      return y
    x_tilde = dq.postprocess(y, self.preprocessing, self.logit_alpha, self.num_bins)
    return 2.0 * dq.to_unit_pixels(x_tilde, self.num_bins) - 1.0

  # --- likelihood ------------------------------------------------------------------------------------------
  def log_prob_flow(self, params, y, labels=None):
    """log p_Y(y) in nats per example: log N(eps) + log|det d eps / dy|."""
    eps, ld = self.bijector.forward(params, y, labels)
    return dq.standard_normal_log_prob(eps) + ld

  def nll(self, params, data, rng=None, labels=None):
    """Per example: bits/dim of dequantised images (of their num_bins levels), or NLL in nats of points."""
    y, ld_pre = self.to_flow_space(data, rng)
    log_p = self.log_prob_flow(params, y, labels)
    if self.is_image:
      return dq.bits_per_dim(log_p, ld_pre, self.num_dims)
    return -log_p

  def _data(self, batch):
    return batch["image"] if self.is_image else batch["points"]

  def loss(self, params, batch, rng):
    per_example = self.nll(params, self._data(batch), rng, self._labels(batch))
    loss = jnp.mean(per_example)
    return loss, {"loss": loss, ("bits_per_dim" if self.is_image else "nll_nats"): loss}

  # --- trainer interface -----------------------------------------------------------------------------------
  def param_labels(self, params):
    """The invertible 1x1 convolutions' permutation and signs are constants ('frozen'); the rest trains."""
    def label(path, _):
      return FROZEN if getattr(path[-1], "key", None) in CONSTANT_KEYS else DEFAULT_GROUP
    return jax.tree_util.tree_map_with_path(label, params)

  def init(self, rng, batch):
    """Parameters, with data-dependent init (actnorm) on this batch; a restored checkpoint replaces them."""
    data = self._data(batch)
    if tuple(data.shape[1:]) != tuple(self.event_shape):
      raise ValueError(f"batch has shape {tuple(data.shape)}, the flow expects (B, {self.event_shape})")
    dq_rng, init_rng = jax.random.split(rng)
    y, _ = self.to_flow_space(data, dq_rng if self.is_image else None)
    return self.bijector.init(init_rng, y, self._labels(batch))

  @property
  def cond_features(self):
    return ("label",) if self.num_classes else ()

  def default_cond(self, num: int):
    """The conditions of a sample grid: classes in equal consecutive runs (one row per class)."""
    return {"label": grid_labels(num, self.num_classes)} if self.num_classes else None

  def sample(self, params, rng, num: int, cond=None, temperature: float = 1.0):
    """`num` samples decoded from temperature * N(0, I); images in [-1, 1]. Conditional: `cond` =
    {'label': (N,)} (jaxgen.conditions), by default `default_cond(num)`."""
    if self.num_classes and cond is None:
      cond = self.default_cond(num)
    conditions.check_cond(cond, self.cond_features, num, "this flow")
    eps = temperature * jax.random.normal(rng, (num, self.latent_size(params)), jnp.float32)
    return self.decode(params, eps, jnp.asarray(cond["label"], jnp.int32) if cond else None)

  # --- latents ---------------------------------------------------------------------------------------------
  def latent_size(self, params=None) -> int:
    return getattr(self.bijector, "event_size", self.num_dims)

  def encode(self, params, data, labels=None):
    """Data (uint8 images at bin centres, or points) -> standardised latents eps (B, D)."""
    y, _ = self.to_flow_space(data)
    return self.bijector.forward(params, y, labels)[0]

  def decode(self, params, eps, labels=None):
    y, _ = self.bijector.inverse(params, eps, labels)
    return self.from_flow_space(y)

  def class_log_likelihoods(self, params, data, rng=None):
    """log p(x | y) for every class y: (B, num_classes), nats (images: of x~ in [0, num_bins)^D)."""
    if not self.num_classes:
      raise ValueError("class_log_likelihoods needs a flow with num_classes > 0")
    y, ld_pre = self.to_flow_space(data, rng)
    b = y.shape[0]

    def for_class(c):
      return self.log_prob_flow(params, y, jnp.full((b,), c, jnp.int32)) + ld_pre
    return jax.lax.map(for_class, jnp.arange(self.num_classes)).T
