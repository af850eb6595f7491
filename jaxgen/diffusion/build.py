"""Build a DDPM from an ml_collections config; `validate_ddpm_config` runs first (no JAX computation)."""
from __future__ import annotations

from jaxgen.data.specs import get_dataset_spec
from jaxgen.diffusion import samplers, schedules
from jaxgen.diffusion.ddpm import DDPM


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
  if d.variance not in samplers.VARIANCES:
    raise ValueError(f"diffusion.variance={d.variance!r}; choose one of: {', '.join(samplers.VARIANCES)}")
  if d.beta_schedule == "linear" and not 0 < d.beta_start <= d.beta_end < 1:
    raise ValueError(f"diffusion.beta_start={d.beta_start}, beta_end={d.beta_end}: need 0 < start <= end < 1")


def make_ddpm(config) -> DDPM:
  """Assumes a validated config."""
  from jaxgen.nn.unet import UNet
  spec = get_dataset_spec(config.data.name)
  m, d = config.model, config.diffusion
  network = UNet(ch=m.ch, ch_mult=tuple(m.ch_mult), num_res_blocks=m.num_res_blocks,
                 attn_resolutions=tuple(m.attn_resolutions), dropout=m.dropout, num_groups=m.num_groups)
  kwargs = dict(beta_start=d.beta_start, beta_end=d.beta_end) if d.beta_schedule == "linear" else {}
  schedule = schedules.make_schedule(d.beta_schedule, d.num_timesteps, **kwargs)
  return DDPM(network=network, schedule=schedule, image_shape=spec.image_shape, variance=d.variance,
              clip_x0=d.clip_x0)
