"""Build NICE, RealNVP and Glow flows from an ml_collections config; `validate_flow_config` runs first.

config.model fields
  kind: 'nice' | 'realnvp' | 'glow'
  images (config.data.name a TFDS data set):
    realnvp: num_scales, couplings_per_scale (3 in the paper; the last scale gets one more), hidden,
             num_blocks (residual blocks of the s/t network), scale ('tanh' | 'sigmoid'), logit_alpha
    glow:    num_levels, depth (steps per level), hidden, coupling ('affine' | 'additive')
  2-D points (a data set of kind 'points', jaxgen.data.specs):
    num_steps, hidden, num_layers; nice: additive couplings + diagonal scaling; realnvp: affine couplings
    (tanh scale); glow: actnorm + invertible linear map + affine coupling (sigmoid scale)
  num_classes: 0, or the data set's number of classes for a class-dependent prior (images only)
  preprocessing (images, optional): 'shift' | 'logit'; default 'logit' for realnvp, 'shift' for glow
  num_bins (images, optional): the data's grey levels, 2..256 (default 256; the digits have 17); bits/dim are
             those of the num_bins-level data (jaxgen.flows.dequantize)
  conv_impl (images, optional): 'auto' (default) | 'xla' | 'matmul', the conditioners' convolutions
             (jaxgen.nn.conditioners: 'auto' is im2col matmuls on the CPU, where scanned native convolutions are slow)
"""
from __future__ import annotations

import functools

from jaxgen.data.specs import get_dataset_spec
from jaxgen.flows import dequantize as dq
from jaxgen.flows.bijector import Chain, Repeat
from jaxgen.flows.coupling import KINDS as COUPLING_KINDS, Coupling, DiagonalScaling, SCALES
from jaxgen.flows.glow import glow_step
from jaxgen.flows.model import FlowModel
from jaxgen.flows.multiscale import Level, MultiScale

KINDS = ("nice", "realnvp", "glow")


def _is_toy(config) -> bool:
  return get_dataset_spec(config.data.name).kind == "points"


def _positive(m, *names):
  for n in names:
    if not isinstance(m[n], int) or m[n] < 1:
      raise ValueError(f"model.{n}={m[n]!r} must be a positive integer")


def validate_flow_config(config) -> None:
  """Raise ValueError naming the bad value."""
  m = config.model
  if m.kind not in KINDS:
    raise ValueError(f"model.kind={m.kind!r}; choose one of: {', '.join(KINDS)}")
  if _is_toy(config):
    _positive(m, "num_steps", "hidden", "num_layers")
    if m.get("num_classes", 0):
      raise ValueError(f"model.num_classes={m.num_classes}: class-conditional flows are for images only")
    return
  spec = get_dataset_spec(config.data.name)
  if m.kind == "nice":
    raise ValueError("model.kind='nice' is for the 2-D data sets; use 'realnvp' or 'glow' (coupling='additive' "
                     "gives NICE's additive coupling in Glow) for images")
  nc = m.get("num_classes", 0)
  if nc not in (0, spec.num_classes):
    raise ValueError(f"model.num_classes={nc} must be 0 or {spec.num_classes} for {spec.name}")
  _positive(m, "hidden")
  if m.num_blocks < 0:
    raise ValueError(f"model.num_blocks={m.num_blocks} must be >= 0")
  pre = m.get("preprocessing", None)
  if pre is not None and pre not in dq.PREPROCESSINGS:
    raise ValueError(f"model.preprocessing={pre!r}; choose one of: {', '.join(dq.PREPROCESSINGS)}")
  from jaxgen.nn.conditioners import CONV_IMPLS
  if m.get("conv_impl", "auto") not in CONV_IMPLS:
    raise ValueError(f"model.conv_impl={m.conv_impl!r}; choose one of: {', '.join(CONV_IMPLS)}")
  try:
    dq.check_num_bins(m.get("num_bins", dq.NUM_BINS))
  except ValueError as e:
    raise ValueError(f"model.{e}") from None
  if m.kind == "realnvp":
    _positive(m, "num_scales", "couplings_per_scale")
    if m.scale not in SCALES:
      raise ValueError(f"model.scale={m.scale!r}; choose one of: {', '.join(SCALES)}")
    if not 0.0 <= m.logit_alpha < 0.5:
      raise ValueError(f"model.logit_alpha={m.logit_alpha} must lie in [0, 0.5)")
  else:
    _positive(m, "num_levels", "depth")
    if m.coupling not in COUPLING_KINDS:
      raise ValueError(f"model.coupling={m.coupling!r}; choose one of: {', '.join(COUPLING_KINDS)}")
  _image_bijector(m, spec.image_shape, nc)     # geometry checks (squeezes vs image size)


SAMPLING_OPTIONS = ("temperature",)        # keyword arguments of FlowModel.sample


def apply_sample_options(config, options):
  """The flow family's sampling options (jaxgen.registry.FAMILIES['flow'].sample_options): `temperature` (> 0,
  the scale of the latent noise; no config field holds it). Returns `config`; ValueError naming the option."""
  import math
  unknown = sorted(set(options) - set(SAMPLING_OPTIONS))
  if unknown:
    raise ValueError(f"sampling option {unknown[0]!r} is not one of the flows': {', '.join(SAMPLING_OPTIONS)}")
  t = options.get("temperature", 1.0)
  if isinstance(t, bool) or not isinstance(t, (int, float)) or not (t > 0 and math.isfinite(t)):
    raise ValueError(f"sampling option temperature={t!r} must be a finite number > 0")
  return config


def _alternating(coupling, n: int):
  """n couplings with alternating parity: Repeat over pairs (lax.scan) plus one more if n is odd."""
  parts = []
  if n // 2:
    parts.append(Repeat(Chain((coupling(parity=0), coupling(parity=1))), n // 2))
  if n % 2:
    parts.append(coupling(parity=0))
  return parts[0] if len(parts) == 1 else Chain(tuple(parts))


def _image_bijector(m, image_shape, num_classes: int):
  from jaxgen.nn.conditioners import ConvConditioner
  net = functools.partial(ConvConditioner, m.hidden, num_blocks=m.num_blocks, conv_impl=m.get("conv_impl", "auto"))
  conditioner = lambda out: net(out_channels=out)   # noqa: E731
  if m.kind == "realnvp":
    cp = functools.partial(Coupling, conditioner, kind="affine", scale=m.scale)
    n = m.couplings_per_scale
    levels = [Level(pre=_alternating(functools.partial(cp, mask="checkerboard"), n), squeeze=True,
                    post=_alternating(functools.partial(cp, mask="channel"), n), split=True)
              for _ in range(m.num_scales - 1)]
    levels.append(Level(pre=_alternating(functools.partial(cp, mask="checkerboard"), n + 1), squeeze=False,
                        post=None, split=False))
    return MultiScale(tuple(levels), tuple(image_shape), learned_prior=False, num_classes=num_classes)
  step = lambda parity: glow_step(conditioner, coupling=m.coupling, parity=parity)   # noqa: E731
  levels = [Level(pre=None, squeeze=True, post=Repeat(step(0), m.depth), split=i < m.num_levels - 1)
            for i in range(m.num_levels)]
  return MultiScale(tuple(levels), tuple(image_shape), learned_prior=True, num_classes=num_classes)


def _toy_bijector(m):
  from jaxgen.nn.conditioners import MLPConditioner
  conditioner = lambda out: MLPConditioner(m.hidden, out, m.num_layers)   # noqa: E731
  if m.kind == "nice":
    cp = functools.partial(Coupling, conditioner, mask="channel", kind="additive")
    return Chain((Repeat(Chain((cp(parity=0), cp(parity=1))), m.num_steps), DiagonalScaling()))
  if m.kind == "realnvp":
    cp = functools.partial(Coupling, conditioner, mask="channel", kind="affine", scale="tanh")
    return Repeat(Chain((cp(parity=0), cp(parity=1))), m.num_steps)
  return Repeat(glow_step(conditioner, coupling="affine"), m.num_steps)


def make_flow(config) -> FlowModel:
  """Assumes a validated config."""
  m = config.model
  if _is_toy(config):
    return FlowModel(_toy_bijector(m), event_shape=(2,), preprocessing=None)
  spec = get_dataset_spec(config.data.name)
  nc = m.get("num_classes", 0)
  pre = m.get("preprocessing", None) or ("logit" if m.kind == "realnvp" else "shift")
  return FlowModel(_image_bijector(m, spec.image_shape, nc), event_shape=tuple(spec.image_shape),
                   preprocessing=pre, logit_alpha=m.get("logit_alpha", 0.05), num_classes=nc,
                   num_bins=m.get("num_bins", dq.NUM_BINS))
