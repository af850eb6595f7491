"""diffusers' configs of a DDPM (`UNet2DModel`'s config.json and `DDPMScheduler`'s scheduler_config.json) as
jaxgen config fields: what jaxgen.diffusion.convert_diffusers builds its run from. Fields a file leaves out
take diffusers' defaults, as diffusers itself loads them; what jaxgen's U-Net or DDPM cannot express is
refused with a ValueError naming the field, its value and what is allowed.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

CONFIG_FILE = "config.json"
SCHEDULER_FILE = "scheduler_config.json"
EXPERIMENT = "experiments.ddpm_cifar"        # the experiment a converted run is recorded as (its 'paper' preset)

# diffusers' UNet2DModel and DDPMScheduler defaults (diffusers 0.42): what a config file that leaves a field out
# gets when diffusers loads it (the Hub's files are older and leave many out). The test checks them against
# the installed diffusers' signatures, saved by tests/fixtures/make_diffusers_fixture.py.
UNET2D_DEFAULTS = dict(
    sample_size=None, in_channels=3, out_channels=3, center_input_sample=False, time_embedding_type="positional",
    time_embedding_dim=None, freq_shift=0, flip_sin_to_cos=True,
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
    mid_block_type="UNetMidBlock2D", up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(224, 448, 672, 896), layers_per_block=2, mid_block_scale_factor=1, downsample_padding=1,
    downsample_type="conv", upsample_type="conv", dropout=0.0, act_fn="silu", attention_head_dim=8,
    norm_num_groups=32, attn_norm_num_groups=None, norm_eps=1e-5, resnet_time_scale_shift="default",
    add_attention=True, class_embed_type=None, num_class_embeds=None, num_train_timesteps=None)
DDPM_SCHEDULER_DEFAULTS = dict(
    num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear", trained_betas=None,
    variance_type="fixed_small", clip_sample=True, prediction_type="epsilon", thresholding=False,
    dynamic_thresholding_ratio=0.995, clip_sample_range=1.0, sample_max_value=1.0, timestep_spacing="leading",
    steps_offset=0, rescale_betas_zero_snr=False)
# diffusers' prediction_type -> jaxgen's config.diffusion.prediction (the same v: alpha_t eps - sigma_t x_0).
PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}


def _refuse(field: str, value: Any, allowed: str, where: str = CONFIG_FILE) -> ValueError:
  return ValueError(f"{where}: {field}={value!r} cannot be converted to jaxgen's U-Net; {allowed}")


def model_config_from_diffusers(config: Mapping[str, Any], image_shape: Tuple[int, int, int] = (32, 32, 3)
                                ) -> Dict[str, Any]:
  """diffusers' UNet2DModel config -> jaxgen's config.model fields (ValueError naming what cannot be mapped).

  Fields the file leaves out take UNet2DModel's defaults (as diffusers loads it); unknown fields are ignored
  (as diffusers does). `image_shape` is the data set's (H, W, C): sample_size and the channels must match it.
  The result has ch, ch_mult, num_res_blocks, attn_resolutions, num_groups, diffusers' options norm_eps,
  flip_sin_to_cos, freq_shift, downsample_padding (config.model fields of the same names, see
  jaxgen.diffusion.options.MODEL_DEFAULTS) and, when the file gives one, dropout.
  """
  if config.get("_class_name", "UNet2DModel") != "UNet2DModel":
    raise _refuse("_class_name", config["_class_name"], "only diffusers' UNet2DModel is supported")
  c = dict(UNET2D_DEFAULTS)
  c.update({k: v for k, v in config.items() if not k.startswith("_")})

  def need(field, ok, allowed):
    if not ok:
      raise _refuse(field, c[field], allowed)

  need("time_embedding_type", c["time_embedding_type"] == "positional", "allowed: 'positional' (sinusoidal)")
  need("act_fn", c["act_fn"] in ("silu", "swish"), "allowed: 'silu' (or its alias 'swish')")
  need("center_input_sample", c["center_input_sample"] is False, "allowed: false (inputs are already in [-1, 1])")
  need("class_embed_type", c["class_embed_type"] is None, "allowed: null (class embeddings are not supported)")
  need("num_class_embeds", c["num_class_embeds"] is None, "allowed: null (class embeddings are not supported)")
  need("mid_block_type", c["mid_block_type"] == "UNetMidBlock2D", "allowed: 'UNetMidBlock2D'")
  need("add_attention", c["add_attention"] is True, "allowed: true (the middle block has attention)")
  need("mid_block_scale_factor", c["mid_block_scale_factor"] == 1, "allowed: 1")
  need("resnet_time_scale_shift", c["resnet_time_scale_shift"] == "default", "allowed: 'default' (added timestep "
       "embedding)")
  need("downsample_type", c["downsample_type"] == "conv", "allowed: 'conv'")
  need("upsample_type", c["upsample_type"] == "conv", "allowed: 'conv'")
  need("downsample_padding", c["downsample_padding"] in (0, 1), "allowed: 0 or 1")
  need("flip_sin_to_cos", isinstance(c["flip_sin_to_cos"], bool), "allowed: true or false")
  need("freq_shift", isinstance(c["freq_shift"], (int, float)) and not isinstance(c["freq_shift"], bool),
       "allowed: a number")
  need("norm_eps", isinstance(c["norm_eps"], (int, float)) and c["norm_eps"] > 0, "allowed: a positive number")
  need("dropout", isinstance(c["dropout"], (int, float)) and 0 <= c["dropout"] < 1, "allowed: a number in [0, 1)")

  channels = c["block_out_channels"]
  need("block_out_channels", isinstance(channels, (list, tuple)) and channels and
       all(isinstance(x, int) and x > 0 for x in channels), "allowed: a non-empty list of positive ints")
  ch = channels[0]
  need("block_out_channels", all(x % ch == 0 for x in channels),
       f"allowed: multiples of the first entry {ch} (jaxgen's ch_mult are ints)")
  num_levels = len(channels)
  for field in ("down_block_types", "up_block_types"):
    need(field, isinstance(c[field], (list, tuple)) and all(isinstance(t, str) for t in c[field]),
         "allowed: a list of block type names")
  down = [t[len("UNetRes"):] if t.startswith("UNetRes") else t for t in c["down_block_types"]]
  up = [t[len("UNetRes"):] if t.startswith("UNetRes") else t for t in c["up_block_types"]]
  need("down_block_types", len(down) == num_levels, f"allowed: one type per entry of block_out_channels "
       f"({num_levels})")
  need("up_block_types", len(up) == num_levels, f"allowed: one type per entry of block_out_channels ({num_levels})")
  need("down_block_types", all(t in ("DownBlock2D", "AttnDownBlock2D") for t in down),
       "allowed: 'DownBlock2D' and 'AttnDownBlock2D'")
  need("up_block_types", all(t in ("UpBlock2D", "AttnUpBlock2D") for t in up),
       "allowed: 'UpBlock2D' and 'AttnUpBlock2D'")
  attn_levels = [level for level, t in enumerate(down) if t == "AttnDownBlock2D"]
  up_attn_levels = sorted(num_levels - 1 - i for i, t in enumerate(up) if t == "AttnUpBlock2D")
  mirror = ["AttnUpBlock2D" if num_levels - 1 - i in attn_levels else "UpBlock2D" for i in range(num_levels)]
  need("up_block_types", up_attn_levels == attn_levels, f"allowed: attention at the down blocks' resolutions, "
       f"i.e. {mirror} (up_blocks are listed from the lowest resolution)")
  need("layers_per_block", isinstance(c["layers_per_block"], int) and c["layers_per_block"] >= 1,
       "allowed: a positive int")
  groups = c["norm_num_groups"]
  need("norm_num_groups", isinstance(groups, int) and groups > 0, "allowed: a positive int (one group count for "
       "every norm)")
  need("attn_norm_num_groups", c["attn_norm_num_groups"] in (None, groups), f"allowed: null or norm_num_groups "
       f"({groups})")
  attn_channels = sorted({channels[level] for level in attn_levels} | {channels[-1]})
  need("attention_head_dim", c["attention_head_dim"] is None or all(x == c["attention_head_dim"] for x in
                                                                     attn_channels),
       f"allowed: null, or the channel count of every attention ({attn_channels}), i.e. one head each")
  need("time_embedding_dim", c["time_embedding_dim"] in (None, 4 * ch), f"allowed: null or 4 * ch = {4 * ch}")

  height, width, depth = image_shape
  size = c["sample_size"]
  size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
  need("sample_size", size == (height, width), f"allowed: {height} (the data set's {height}x{width} images)")
  need("in_channels", c["in_channels"] == depth, f"allowed: {depth} (the data set's channels)")
  need("out_channels", c["out_channels"] == depth, f"allowed: {depth}, as in_channels (a noise prediction)")

  model = dict(ch=ch, ch_mult=tuple(x // ch for x in channels), num_res_blocks=c["layers_per_block"],
               attn_resolutions=tuple(height // 2 ** level for level in attn_levels), num_groups=groups,
               norm_eps=float(c["norm_eps"]), flip_sin_to_cos=c["flip_sin_to_cos"],
               freq_shift=float(c["freq_shift"]), downsample_padding=int(c["downsample_padding"]))
  if "dropout" in config:     # a training setting: else the experiment's (the paper's 0.1)
    model["dropout"] = float(config["dropout"])
  return model


def diffusion_config_from_scheduler(config: Mapping[str, Any]) -> Dict[str, Any]:
  """diffusers' DDPMScheduler config -> jaxgen's config.diffusion fields (ValueError naming what cannot be mapped).

  Missing fields take DDPMScheduler's defaults. timestep_spacing and steps_offset only matter when diffusers
  samples with fewer than num_train_timesteps steps and are ignored: the run samples with the experiment's
  settings (config.diffusion.sampler, sample_steps: every step), which sampling commands override.
  """
  if config.get("_class_name", "DDPMScheduler") != "DDPMScheduler":
    raise _refuse("_class_name", config["_class_name"], "only diffusers' DDPMScheduler is supported",
                  SCHEDULER_FILE)
  c = dict(DDPM_SCHEDULER_DEFAULTS)
  c.update({k: v for k, v in config.items() if not k.startswith("_")})

  def need(field, ok, allowed):
    if not ok:
      raise ValueError(f"{SCHEDULER_FILE}: {field}={c[field]!r} cannot be converted to jaxgen's DDPM; {allowed}")

  need("beta_schedule", c["beta_schedule"] == "linear", "allowed: 'linear'")
  need("trained_betas", c["trained_betas"] is None, "allowed: null")
  need("variance_type", c["variance_type"] in ("fixed_large", "fixed_small"), "allowed: 'fixed_large', "
       "'fixed_small'")
  need("prediction_type", c["prediction_type"] in PREDICTIONS, f"allowed: {', '.join(map(repr, PREDICTIONS))}")
  need("thresholding", c["thresholding"] is False, "allowed: false")
  need("rescale_betas_zero_snr", c["rescale_betas_zero_snr"] is False, "allowed: false")
  need("clip_sample", isinstance(c["clip_sample"], bool), "allowed: true or false")
  need("clip_sample_range", not c["clip_sample"] or c["clip_sample_range"] == 1.0, "allowed: 1.0 (clip to [-1, 1])")
  need("num_train_timesteps", isinstance(c["num_train_timesteps"], int) and c["num_train_timesteps"] >= 1,
       "allowed: a positive int")
  need("beta_start", isinstance(c["beta_start"], (int, float)) and 0 < c["beta_start"] <= c["beta_end"] < 1,
       f"allowed: 0 < beta_start <= beta_end ({c['beta_end']!r}) < 1")
  return dict(num_timesteps=c["num_train_timesteps"], beta_schedule="linear", beta_start=float(c["beta_start"]),
              beta_end=float(c["beta_end"]), variance=c["variance_type"], clip_x0=c["clip_sample"],
              prediction=PREDICTIONS[c["prediction_type"]])


def run_config(model_config: Mapping[str, Any], scheduler_config: Optional[Mapping[str, Any]] = None):
  """The converted run's config: the library's DDPM config (jaxgen.diffusion.config.ddpm_config('paper'), the
  'paper' preset of experiments.ddpm_cifar), config.model from the model's config.json and config.diffusion
  from scheduler_config.json (the preset's when None)."""
  from jaxgen.data.specs import get_dataset_spec
  from jaxgen.diffusion.config import ddpm_config
  config = ddpm_config("paper")
  model = model_config_from_diffusers(model_config, get_dataset_spec(config.data.name).image_shape)
  with config.unlocked():
    config.model.update(model)
    if scheduler_config is not None:
      config.diffusion.update(diffusion_config_from_scheduler(scheduler_config))
  return config

