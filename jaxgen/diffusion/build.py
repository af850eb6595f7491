"""Build a DDPM from an ml_collections config; `validate_ddpm_config` runs first (no JAX computation).

Fields added after the first release are read with their defaults (DIFFUSION_DEFAULTS, MODEL_DEFAULTS), so
the config of an older run directory still builds the model it trained.
"""
from __future__ import annotations

from jaxgen.data.specs import get_dataset_spec
from jaxgen.diffusion import options as opts
from jaxgen.diffusion import schedules
from jaxgen.diffusion.options import DIFFUSION_DEFAULTS, MODEL_DEFAULTS


def _settings(section, defaults):
  return {k: section.get(k, v) for k, v in defaults.items()}


def validate_ddpm_config(config) -> None:
  """Raise ValueError naming the bad value: dataset, schedule, sampler variance, U-Net shape."""
  from jaxgen.nn.unet import check_unet_config
  spec = get_dataset_spec(config.data.name)
  if spec.kind != "image":
    raise ValueError(f"data.name={spec.name!r} holds {spec.kind}; the DDPM U-Net trains on images")
  h, w, _ = spec.image_shape
  m = config.model
  for size in sorted({h, w}):
    check_unet_config(size, m.ch, tuple(m.ch_mult), m.num_groups, tuple(m.attn_resolutions))
  if not 0.0 <= m.dropout < 1.0:
    raise ValueError(f"model.dropout={m.dropout} must lie in [0, 1)")
  d = config.diffusion
  if d.beta_schedule not in schedules.SCHEDULES:
    raise ValueError(f"diffusion.beta_schedule={d.beta_schedule!r}; choose one of: {', '.join(schedules.SCHEDULES)}")
  if d.num_timesteps < 1:
    raise ValueError(f"diffusion.num_timesteps={d.num_timesteps} must be >= 1")
  if d.variance not in opts.VARIANCES:
    raise ValueError(f"diffusion.variance={d.variance!r}; choose one of: {', '.join(opts.VARIANCES)}")
  if d.beta_schedule == "linear" and not 0 < d.beta_start <= d.beta_end < 1:
    raise ValueError(f"diffusion.beta_start={d.beta_start}, beta_end={d.beta_end}: need 0 < start <= end < 1")
  s, ms = _settings(d, DIFFUSION_DEFAULTS), _settings(m, MODEL_DEFAULTS)
  if s["prediction"] not in opts.PREDICTIONS:
    raise ValueError(f"diffusion.prediction={s['prediction']!r}; choose one of: {', '.join(opts.PREDICTIONS)}")
  if s["loss_weighting"] not in opts.WEIGHTINGS:
    raise ValueError(f"diffusion.loss_weighting={s['loss_weighting']!r}; choose one of: "
                     f"{', '.join(opts.WEIGHTINGS)}")
  if s["loss_weighting"] == "min_snr" and not s["min_snr_gamma"] > 0:
    raise ValueError(f"diffusion.min_snr_gamma={s['min_snr_gamma']} must be > 0")
  if s["sampler"] not in opts.SAMPLERS:
    raise ValueError(f"diffusion.sampler={s['sampler']!r}; choose one of: {', '.join(opts.SAMPLERS)}")
  if s["timestep_spacing"] not in opts.SPACINGS:
    raise ValueError(f"diffusion.timestep_spacing={s['timestep_spacing']!r}; choose one of: "
                     f"{', '.join(opts.SPACINGS)}")
  if not 0 <= s["sample_steps"] <= d.num_timesteps:
    raise ValueError(f"diffusion.sample_steps={s['sample_steps']} must lie in [0, num_timesteps={d.num_timesteps}]"
                     " (0 = all)")
  opts.timestep_subsequence(d.num_timesteps, s["sample_steps"], s["timestep_spacing"])
  if not s["eta"] >= 0:
    raise ValueError(f"diffusion.eta={s['eta']} must be >= 0")
  if not 0 <= s["label_dropout"] < 1:
    raise ValueError(f"diffusion.label_dropout={s['label_dropout']} must lie in [0, 1)")
  k = ms["num_classes"]
  if k and k != spec.num_classes:
    raise ValueError(f"model.num_classes={k} but {spec.name} has {spec.num_classes} classes (or use 0)")
  if not k and s["guidance"]:
    raise ValueError(f"diffusion.guidance={s['guidance']} needs a class-conditional model (model.num_classes > 0)")
  if k and s["label_dropout"] == 0 and s["guidance"]:
    raise ValueError(f"diffusion.guidance={s['guidance']} needs label_dropout > 0: without it the null class "
                     "is never trained")
  if ms["dtype"] not in opts.COMPUTE_DTYPES:
    raise ValueError(f"model.dtype={ms['dtype']!r}; choose one of: {', '.join(opts.COMPUTE_DTYPES)}")
  if ms["downsample_padding"] not in (0, 1):
    raise ValueError(f"model.downsample_padding={ms['downsample_padding']!r}; choose 0 (bottom/right) or 1 (all sides)")


def unet_kwargs(model) -> dict:
  """jaxgen.nn.unet.UNet's arguments from config.model (the one place they are read; fields an older config
  lacks take MODEL_DEFAULTS, so its run directory still builds the network it trained)."""
  import jax.numpy as jnp
  kwargs = dict(ch=model["ch"], ch_mult=tuple(model["ch_mult"]), num_res_blocks=model["num_res_blocks"],
                attn_resolutions=tuple(model["attn_resolutions"]), dropout=model.get("dropout", 0.0),
                num_groups=model["num_groups"], **_settings(model, MODEL_DEFAULTS))
  kwargs["dtype"] = jnp.dtype(kwargs["dtype"])         # the config's name ('float32', 'bfloat16') -> a dtype
  return kwargs


def make_ddpm(config):
  """Assumes a validated config."""
  from jaxgen.diffusion.ddpm import DDPM
  from jaxgen.nn.unet import UNet
  spec = get_dataset_spec(config.data.name)
  m, d = config.model, config.diffusion
  ms, s = _settings(m, MODEL_DEFAULTS), _settings(d, DIFFUSION_DEFAULTS)
  network = UNet(**unet_kwargs(m))
  kwargs = dict(beta_start=d.beta_start, beta_end=d.beta_end) if d.beta_schedule == "linear" else {}
  schedule = schedules.make_schedule(d.beta_schedule, d.num_timesteps, **kwargs)
  return DDPM(network=network, schedule=schedule, image_shape=spec.image_shape, variance=d.variance,
              clip_x0=d.clip_x0, num_classes=ms["num_classes"], **{k: v for k, v in s.items()})
