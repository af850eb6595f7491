"""DDPM (Ho et al. 2020) as a model family for the shared trainer, with its later refinements, on any tensor.

The method is a frozen dataclass holding its static settings and its network; its functions are pure
functions of a params pytree. The trainer calls `init`, differentiates `loss` and calls `sample` for grids
(jaxgen.train.family). Settings are validated from the config (jaxgen.diffusion.build) before it is built.

- What is diffused is the codec's (jaxgen.diffusion.codecs): 8-bit images scaled to [-1, 1], float vectors
  such as 2-D points, or the latents of a frozen autoencoder; `sample` decodes back. Clipping the predicted x0
  (`clip_x0`) applies only to bounded data.
- `prediction`: the network predicts eps, x0 or v; `loss_weighting` (+ `min_snr_gamma`) weights the loss
  (jaxgen.diffusion.parameterisation).
- Conditional (`cond_features`, the network's: ('label',) when num_classes > 0, ('tokens',) for a U-Net with
  text cross-attention, or both; ('embedding',) and/or ('token_features',) for unCLIP's prior): the network
  takes a condition dict (jaxgen.conditions) read from the batch; in training each example's condition is
  replaced by its null value with probability `label_dropout` (the null class for labels), and sampling
  applies classifier-free guidance (Ho & Salimans 2022, jaxgen.diffusion.guidance) with scale w:
  eps = (1 + w) eps(x, c) - w eps(x, null); w = 0 is the plain conditional model.
- A condition encoder (`conditioner`, jaxgen.conditioners) turns the batch's raw condition (an image,
  a caption) into the network's features with a frozen part (unCLIP: a frozen CLIP run); `cond_features` are
  then its inputs, dropout and guidance act on its outputs, and `sample` takes either.
- `sample` runs the sampler named by `sampler` ('ancestral' or 'ddim') over `sample_steps` timesteps spaced by
  `timestep_spacing` (jaxgen.diffusion.samplers); each can be overridden per call.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import conditions
from jaxgen.diffusion import parameterisation, samplers, vlb
from jaxgen.diffusion import gaussian
from jaxgen.diffusion.codecs import ImageCodec
from jaxgen.diffusion.guidance import guided_model_fn
from jaxgen.train.frozen import FrozenPart


@dataclasses.dataclass(frozen=True)
class DDPM:
  network: nn.Module                 # network(x_t, t, cond, train=...) -> prediction (UNet, MLPDenoiser)
  schedule: Any                      # jaxgen.diffusion.schedules.DiffusionSchedule
  image_shape: Optional[Tuple[int, ...]] = None   # shorthand for codec=ImageCodec(image_shape)
  variance: str = "fixed_large"      # ancestral sampler variance, see jaxgen.diffusion.samplers
  clip_x0: bool = True               # clip the predicted x_0 to [-1, 1] while sampling (bounded data only)
  prediction: str = "eps"            # 'eps' | 'x0' | 'v'
  loss_weighting: str = "simple"     # 'simple' | 'snr' | 'min_snr'
  min_snr_gamma: float = 5.0
  num_classes: int = 0               # > 0: class-conditional (cond['label'] from batch['label'])
  label_dropout: float = 0.1         # probability of training on the null condition (classifier-free guidance)
  sampler: str = "ancestral"         # the defaults of `sample`
  sample_steps: int = 0              # 0: all T
  timestep_spacing: str = "even"
  eta: float = 0.0
  guidance: float = 0.0
  codec: Any = None                  # jaxgen.diffusion.codecs: what is diffused and how samples are decoded
  grid_tokens: Tuple[Tuple[int, ...], ...] = ()   # text-conditional: the captions (token ids) of sample grids
  frozen_parts: Mapping[str, FrozenPart] = dataclasses.field(default_factory=dict)
  conditioner: Any = None            # jaxgen.conditioners: batch features -> the network's condition
  # with a conditioner: the grid rows' source features ({'image': uint8 (R, H, W, C)} of held-out examples),
  # numpy arrays, left out of the dataclass's equality and hash
  grid_cond: Any = dataclasses.field(default=None, compare=False, hash=False)

  def __post_init__(self):
    if self.codec is None:
      if self.image_shape is None:
        raise ValueError("DDPM needs a codec (jaxgen.diffusion.codecs) or an image_shape")
      object.__setattr__(self, "codec", ImageCodec(tuple(self.image_shape)))

  @property
  def event_shape(self) -> Tuple[int, ...]:
    return tuple(self.codec.event_shape)

  @property
  def network_cond_features(self) -> Tuple[str, ...]:
    """The condition features the network reads (after the condition encoder, if any)."""
    return tuple(getattr(self.network, "cond_features", ("label",) if self.num_classes else ()))

  @property
  def cond_features(self) -> Tuple[str, ...]:
    """The features the family reads from a batch (or a held-out split) as its condition: the condition
    encoder's inputs when it has one, else the network's features."""
    if self.conditioner is not None:
      return tuple(self.conditioner.inputs)
    return self.network_cond_features

  def encode_cond(self, params, cond):
    """The network's condition from `cond`: the condition encoder applied to its inputs (e.g. {'image'} ->
    {'embedding'}), or `cond` as it is when it already holds the network's features (or there is no encoder)."""
    if self.conditioner is None or not cond or set(cond) != set(self.conditioner.inputs):
      return cond
    return self.conditioner.encode(params, cond)

  @property
  def cond_nulls(self) -> Dict[str, Any]:
    return {"label": self.num_classes, "tokens": 0, "embedding": 0.0, "token_features": 0.0}

  def default_cond(self, num: int):
    """The conditions of a sample grid: classes in equal consecutive runs (one row per class); captions
    (`grid_tokens`) likewise, one row per caption."""
    if not self.cond_features:
      return None
    if self.conditioner is not None:
      if self.grid_cond is None:
        raise ValueError(f"a DDPM conditioned through {type(self.conditioner).__name__} draws its grid from "
                         "grid_cond; none was given: pass the condition")
      n = len(next(iter(self.grid_cond.values())))
      rows = conditions.grid_labels(num, n)
      return {k: jnp.asarray(v)[rows] for k, v in self.grid_cond.items()}
    cond = {}
    if "label" in self.cond_features:
      cond["label"] = conditions.grid_labels(num, self.num_classes)
    if "tokens" in self.cond_features:
      if not self.grid_tokens:
        raise ValueError("a text-conditional DDPM draws its grid from grid_tokens (captions); none were given")
      rows = conditions.grid_labels(num, len(self.grid_tokens))
      cond["tokens"] = jnp.asarray(self.grid_tokens, jnp.int32)[rows]
    given = [f for f in ("embedding", "token_features") if f in self.cond_features]
    if given:
      raise ValueError(f"a DDPM conditioned on {tuple(given)} has no default sample grid; pass the condition")
    return cond

  def _example_cond(self):
    cond = {}
    if "label" in self.network_cond_features:
      cond["label"] = jnp.zeros((1,), jnp.int32)
    if "tokens" in self.network_cond_features:
      cond["tokens"] = jnp.zeros((1, self.network.text_max_len), jnp.int32)
    if "embedding" in self.network_cond_features:           # unCLIP's prior and decoder (PriorTransformer, UNet)
      cond["embedding"] = jnp.zeros((1, self.network.embedding_dim), jnp.float32)
    if "token_features" in self.network_cond_features:
      cond["token_features"] = jnp.zeros((1, self.network.num_tokens, self.network.token_dim), jnp.float32)
    return cond or None

  def _net_params(self, params):
    return {k: v for k, v in params.items() if k not in self.frozen_parts} if self.frozen_parts else params

  def init(self, rng, batch=None) -> Any:
    """Network parameters; only the event shape matters, so `batch` may be None."""
    x = jnp.zeros((1,) + self.event_shape, jnp.float32)
    t = jnp.zeros((1,), jnp.int32)
    cond = self._example_cond()
    return self.network.init({"params": rng}, x, t, cond, train=False)["params"]

  def network_fn(self, params, cond=None, *, train: bool = False, rng=None):
    """(x_t, t) -> the network's raw prediction (eps, x0 or v) under condition `cond`."""
    net_params = self._net_params(params)

    def fn(xt, t):
      rngs = {"dropout": rng} if train else None
      return self.network.apply({"params": net_params}, xt, t, cond, train=train, rngs=rngs)
    return fn

  def model_fn(self, params, cond=None, guidance: float = 0.0):
    """The samplers' model_fn(x_t, t) -> (eps, x0); conditional with guidance w != 0: the guided prediction,
    with the conditional and the null pass in one batch of 2B."""
    if self.network_cond_features and not cond:
      raise ValueError(f"a conditional DDPM (conditioned on {self.network_cond_features}) samples with a "
                       "condition")
    cond = {k: jnp.asarray(v) for k, v in cond.items()} if cond else None

    def cond_model(xt, t, c):
      return parameterisation.model_fn(self.schedule, self.prediction, self.network_fn(params, c))(xt, t)
    return guided_model_fn(cond_model, cond, self.cond_nulls, guidance)

  def _cond(self, batch, rng, train: bool, params=None):
    if self.conditioner is not None and all(k in batch for k in self.conditioner.outputs):
      # encoded once before training (jaxgen.unclip.cache): the encoder's outputs are in the batch already
      cond = {k: jnp.asarray(batch[k], jnp.float32) for k in self.conditioner.outputs}
    else:
      cond = conditions.from_batch(batch, self.cond_features)
      for k in ("label", "tokens"):
        if cond and k in cond:
          cond[k] = cond[k].astype(jnp.int32)
      cond = self.encode_cond(params, cond)
    if train:
      cond = conditions.drop(cond, rng, self.label_dropout, self.cond_nulls)
    return cond

  def loss(self, params, batch, rng, *, train: bool = True):
    """The weighted regression loss of the chosen parameterisation on a batch (the codec's feature, e.g.
    {'image': uint8 (B, H, W, C)}, [+ condition features]); with eps prediction and 'simple' weighting it is
    L_simple. Returns (loss, metrics)."""
    x0 = self.codec.encode(params, batch)
    t_rng, n_rng, dropout_rng, cond_rng = jax.random.split(rng, 4)
    t = jax.random.randint(t_rng, (x0.shape[0],), 0, self.schedule.num_timesteps)
    noise = jax.random.normal(n_rng, x0.shape, jnp.float32)
    xt = gaussian.q_sample(self.schedule, x0, t, noise)
    cond = self._cond(batch, cond_rng, train, params)
    out = self.network_fn(params, cond, train=train, rng=dropout_rng)(xt, t).astype(jnp.float32)
    target = parameterisation.target(self.schedule, self.prediction, x0, noise, t)
    per_example = jnp.mean(jnp.square(out - target), axis=tuple(range(1, x0.ndim)))
    weights = parameterisation.loss_weights(self.schedule, self.prediction, self.loss_weighting, self.min_snr_gamma)
    loss = jnp.mean(jnp.take(jnp.asarray(weights), t) * per_example)
    return loss, {"loss": loss}

  def timesteps(self, steps: Optional[int] = None, spacing: Optional[str] = None):
    return samplers.timestep_subsequence(self.schedule.num_timesteps, self.sample_steps if steps is None else steps,
                                         self.timestep_spacing if spacing is None else spacing)

  def sample(self, params, rng, num: int, cond=None, *, sampler: Optional[str] = None,
             steps: Optional[int] = None, spacing: Optional[str] = None, eta: Optional[float] = None,
             guidance: Optional[float] = None, variance: Optional[str] = None):
    """`num` samples decoded by the codec (images in [-1, 1], or vectors); conditional: `cond` (a condition
    dict with leading axis num), by default `default_cond(num)`. Unset options take the family's defaults."""
    if self.cond_features and cond is None:
      cond = self.default_cond(num)
    cond = self.encode_cond(params, cond)        # the encoder's inputs -> the network's features
    conditions.check_cond(cond, self.network_cond_features, num, "this DDPM")
    shape = (num,) + self.event_shape
    model = self.model_fn(params, cond, self.guidance if guidance is None else guidance)
    x = samplers.sample(self.schedule, model, rng, shape, sampler=sampler or self.sampler,
                        timesteps=self.timesteps(steps, spacing), eta=self.eta if eta is None else eta,
                        variance=variance or self.variance, clip_x0=self.clip_x0 and self.codec.bounded)
    return self.codec.decode(params, x)

  def encode(self, params, x0, cond=None, *, steps: Optional[int] = None, spacing: Optional[str] = None):
    """DDIM inversion of data x0 (in the diffused space, e.g. images in [-1, 1]) to x_T
    (jaxgen.diffusion.samplers.ddim_encode); conditional: the data's condition (no guidance)."""
    model = self.model_fn(params, self.encode_cond(params, cond), 0.0)
    return samplers.ddim_encode(self.schedule, model, x0, timesteps=self.timesteps(steps, spacing))

  def decode(self, params, x_T, cond=None, *, steps: Optional[int] = None, spacing: Optional[str] = None):
    """The deterministic DDIM map x_T -> x_0 that `encode` inverts (no clipping, no guidance)."""
    model = self.model_fn(params, self.encode_cond(params, cond), 0.0)
    return samplers.ddim_sample(self.schedule, model, None, x_T.shape, timesteps=self.timesteps(steps, spacing),
                                eta=0.0, clip_x0=False, x_T=x_T)

  def vlb(self, params, batch, rng) -> Dict[str, jnp.ndarray]:
    """The variational bound's terms per example (jaxgen.diffusion.vlb) on a batch of the codec's data (with
    its condition: a conditional model is scored with the true condition, no guidance). Quantised data
    (codec.bins > 0): the discretised decoder and bits/dim of the discrete data; continuous data: nats of a
    density."""
    x0 = self.codec.encode(params, batch)
    cond = self._cond(batch, None, False, params)
    model = parameterisation.model_fn(self.schedule, self.prediction, self.network_fn(params, cond))
    return vlb.vlb_terms(self.schedule, model, x0, rng, variance=self.variance, bins=self.codec.bins)
