"""Convert diffusers' DDPM CIFAR-10 model (google/ddpm-cifar10-32) into a jaxgen run directory.

  python -m jaxgen.diffusion.convert_diffusers SRC_DIR DST

SRC_DIR holds diffusers' `config.json` and `diffusion_pytorch_model.safetensors` (download them from
https://huggingface.co/google/ddpm-cifar10-32, e.g. `huggingface-cli download google/ddpm-cifar10-32
--local-dir SRC_DIR`); `scheduler_config.json` is read from beside them, from `scheduler/` there or from one level
up (a pipeline's layout, with the model in `unet/`, works too). DST becomes a run of `experiments.ddpm_cifar`
(the 'paper' preset with `config.model` and `config.diffusion` taken from the two config files) whose checkpoint,
at step 0, holds params = EMA params = the converted weights and a fresh optimizer state; its config.json
records the conversion under `converted_from`. `jaxgen.train.run.load_run(DST)` restores it, so sampling and
evaluation (experiments.evaluate) work on it as on a trained run.

Reading the weights needs neither torch nor the `safetensors` package: `read_safetensors` reads the format with
numpy (an 8-byte little-endian header length, a JSON header of dtype / shape / data offsets, raw little-endian
data). A PyTorch pickle (`diffusion_pytorch_model.bin`) is refused: jaxgen does not depend on torch.

The mapping (`param_target`; diffusers' `up_blocks` count from the lowest resolution, so up_blocks.i is jaxgen's
level L-1-i):
  conv_in, conv_out, conv_norm_out                 -> conv_in, conv_out, norm_out
  time_embedding.linear_1 / linear_2               -> temb_dense0 / temb_dense1
  down_blocks.i.resnets.j.*                        -> down_{i}_block_{j}/*
  down_blocks.i.attentions.j.*                     -> down_{i}_attn_{j}/*
  down_blocks.i.downsamplers.0.conv                -> down_{i}_downsample/conv
  mid_block.resnets.0 / 1, mid_block.attentions.0  -> mid_block_1 / mid_block_2, mid_attn_1
  up_blocks.i.resnets.j / attentions.j             -> up_{L-1-i}_block_{j} / up_{L-1-i}_attn_{j}
  up_blocks.i.upsamplers.0.conv                    -> up_{L-1-i}_upsample/conv
  in a resnet: norm1, conv1, time_emb_proj, norm2, conv2, conv_shortcut -> norm1, conv1, temb_proj, norm2, conv2,
               nin_shortcut
  in an attention: group_norm, to_q, to_k, to_v, to_out.0 (older diffusers: query, key, value, proj_attn)
               -> norm, q, k, v, proj_out
Convolution weights (O, I, kh, kw) become kernels (kh, kw, I, O); linear weights (O, I) and the 1x1 convolution
shortcuts (O, I, 1, 1) become Dense kernels (I, O); norm weights become GroupNorm scales. Every source key must
be used exactly once and every parameter of the U-Net filled with its shape, or the conversion fails naming them.
"""
from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

HUB_URL = "https://huggingface.co/google/ddpm-cifar10-32"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
PICKLE_FILE = "diffusion_pytorch_model.bin"
SCHEDULER_FILE = "scheduler_config.json"
EXPERIMENT = "experiments.ddpm_cifar"

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


# -- safetensors, with numpy ------------------------------------------------------------------------------------

_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
              "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_MAX_HEADER = 100 << 20     # the safetensors library's own limit on the JSON header


def read_safetensors(path: str) -> Dict[str, np.ndarray]:
  """{name: array} of a .safetensors file (bfloat16 is widened to float32; the `__metadata__` is dropped).

  Raises ValueError naming the file when it is not a well-formed safetensors file.
  """
  def bad(why):
    return ValueError(f"{path} is not a valid safetensors file: {why}")

  size = os.path.getsize(path)
  with open(path, "rb") as f:
    prefix = f.read(8)
    if len(prefix) < 8:
      raise bad(f"{size} bytes, shorter than the 8-byte header length")
    header_len = int.from_bytes(prefix, "little")
    if header_len > min(size - 8, _MAX_HEADER):
      raise bad(f"header length {header_len} exceeds the file ({size} bytes)")
    try:
      header = json.loads(f.read(header_len).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      raise bad(f"its header is not JSON ({e})") from None
    data = np.fromfile(f, dtype=np.uint8)
  if not isinstance(header, dict):
    raise bad("its header is not a JSON object")
  header.pop("__metadata__", None)
  tensors = {}
  for name, info in header.items():
    try:
      dtype, shape, (begin, end) = info["dtype"], [int(s) for s in info["shape"]], info["data_offsets"]
    except (KeyError, TypeError, ValueError):
      raise bad(f"tensor {name!r} has no dtype, shape and data_offsets ({info!r})") from None
    if dtype != "BF16" and dtype not in _ST_DTYPES:
      raise bad(f"tensor {name!r} has dtype {dtype!r}; this reader knows {', '.join(sorted(_ST_DTYPES))}, BF16")
    itemsize = 2 if dtype == "BF16" else np.dtype(_ST_DTYPES[dtype]).itemsize
    if not 0 <= begin <= end <= data.size or end - begin != itemsize * int(np.prod(shape)):
      raise bad(f"tensor {name!r} ({dtype} {shape}) has data_offsets [{begin}, {end}], which do not fit its "
                f"size or the {data.size} data bytes")
    raw = data[begin:end]
    if dtype == "BF16":     # the top 16 bits of a float32
      value = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    else:
      value = raw.view(_ST_DTYPES[dtype]).astype(np.dtype(_ST_DTYPES[dtype]).newbyteorder("="))
    tensors[name] = value.reshape(shape)
  return tensors


def write_safetensors(path: str, tensors: Mapping[str, np.ndarray],
                      metadata: Optional[Mapping[str, str]] = None) -> None:
  """Write {name: array} as a .safetensors file (numpy dtypes of the format; no bfloat16)."""
  codes = {np.dtype(v).newbyteorder("<"): k for k, v in _ST_DTYPES.items()}
  header: Dict[str, Any] = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}} if metadata else {}
  chunks, offset = [], 0
  for name in sorted(tensors):
    value = np.asarray(tensors[name])
    code = codes.get(value.dtype.newbyteorder("<"))
    if code is None:
      raise ValueError(f"tensor {name!r} has dtype {value.dtype}, which safetensors cannot hold")
    raw = value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
    header[name] = {"dtype": code, "shape": list(value.shape), "data_offsets": [offset, offset + len(raw)]}
    chunks.append(raw)
    offset += len(raw)
  text = json.dumps(header, separators=(",", ":")).encode("utf-8")
  text += b" " * (-len(text) % 8)            # the data start 8-byte aligned, as the library writes them
  with open(path, "wb") as f:
    f.write(len(text).to_bytes(8, "little"))
    f.write(text)
    for raw in chunks:
      f.write(raw)


# -- the config files -----------------------------------------------------------------------------------------

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


def _experiment_config():
  """experiments.ddpm_cifar.get_config('paper') (from the repository next to the jaxgen package if the
  `experiments` package is not importable)."""
  try:
    from experiments import ddpm_cifar
  except ImportError:
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "experiments", "ddpm_cifar.py")
    if not os.path.exists(path):
      raise ImportError(f"cannot import {EXPERIMENT} (nor find {path}): run the converter from the jaxgen "
                        "repository root") from None
    spec = importlib.util.spec_from_file_location("_jaxgen_ddpm_cifar", path)
    ddpm_cifar = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ddpm_cifar)
  return ddpm_cifar.get_config("paper")


def run_config(model_config: Mapping[str, Any], scheduler_config: Optional[Mapping[str, Any]] = None):
  """The converted run's config: ddpm_cifar's 'paper' preset, config.model from the model's config.json and
  config.diffusion from scheduler_config.json (the preset's when None)."""
  from jaxgen.data.specs import get_dataset_spec
  config = _experiment_config()
  model = model_config_from_diffusers(model_config, get_dataset_spec(config.data.name).image_shape)
  with config.unlocked():
    config.model.update(model)
    if scheduler_config is not None:
      config.diffusion.update(diffusion_config_from_scheduler(scheduler_config))
  return config


def unet_kwargs(model: Mapping[str, Any]) -> Dict[str, Any]:
  """jaxgen.nn.unet.UNet's arguments from config.model (fields it leaves out: MODEL_DEFAULTS, as the build code)."""
  from jaxgen.diffusion.options import MODEL_DEFAULTS
  kwargs = dict(ch=model["ch"], ch_mult=tuple(model["ch_mult"]), num_res_blocks=model["num_res_blocks"],
                attn_resolutions=tuple(model["attn_resolutions"]), dropout=model.get("dropout", 0.0),
                num_groups=model["num_groups"])
  kwargs.update({k: model.get(k, v) for k, v in MODEL_DEFAULTS.items()})
  return kwargs


# -- the weights ------------------------------------------------------------------------------------------------

_RESNET = {"norm1": ("norm1", "norm"), "conv1": ("conv1", "conv"), "time_emb_proj": ("temb_proj", "dense"),
           "norm2": ("norm2", "norm"), "conv2": ("conv2", "conv"), "conv_shortcut": ("nin_shortcut", "dense")}
_ATTN = {"group_norm": ("norm", "norm"), "to_q": ("q", "dense"), "to_k": ("k", "dense"), "to_v": ("v", "dense"),
         "to_out.0": ("proj_out", "dense"), "query": ("q", "dense"), "key": ("k", "dense"),
         "value": ("v", "dense"), "proj_attn": ("proj_out", "dense")}
_TOP = {"conv_in": ("conv_in", "conv"), "conv_out": ("conv_out", "conv"), "conv_norm_out": ("norm_out", "norm"),
        "time_embedding.linear_1": ("temb_dense0", "dense"), "time_embedding.linear_2": ("temb_dense1", "dense")}
_BLOCK_KEY = re.compile(r"^(down|up)_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$")
_RESAMPLE_KEY = re.compile(r"^(down|up)_blocks\.(\d+)\.(downsamplers|upsamplers)\.0\.conv$")
_MID_KEY = re.compile(r"^mid_block\.(resnets|attentions)\.(\d+)\.(.+)$")


def param_target(key: str, num_levels: int) -> Optional[Tuple[Tuple[str, ...], str]]:
  """(path in jaxgen's UNet params, kind 'conv' | 'dense' | 'norm') of a diffusers state-dict key; None when the
  key has no place in the U-Net. E.g. 'up_blocks.0.resnets.2.conv1.weight' (4 levels) ->
  (('up_3_block_2', 'conv1', 'kernel'), 'conv')."""
  module, _, leaf = key.rpartition(".")
  if leaf not in ("weight", "bias"):
    return None
  m = _BLOCK_KEY.match(module)
  if m:
    side, i, kind, j, sub = m.groups()
    table = _RESNET if kind == "resnets" else _ATTN
    level = int(i) if side == "down" else num_levels - 1 - int(i)
    if sub not in table or not 0 <= level < num_levels:
      return None
    name, op = table[sub]
    prefix = (f"{side}_{level}_{'block' if kind == 'resnets' else 'attn'}_{int(j)}", name)
  elif _RESAMPLE_KEY.match(module):
    side, i, kind = _RESAMPLE_KEY.match(module).groups()
    level = int(i) if side == "down" else num_levels - 1 - int(i)
    if (kind == "downsamplers") != (side == "down") or not 0 <= level < num_levels:
      return None
    prefix, op = (f"{side}_{level}_{'downsample' if side == 'down' else 'upsample'}", "conv"), "conv"
  elif _MID_KEY.match(module):
    kind, j, sub = _MID_KEY.match(module).groups()
    table = _RESNET if kind == "resnets" else _ATTN
    if sub not in table or int(j) > (1 if kind == "resnets" else 0):
      return None
    name, op = table[sub]
    prefix = (f"mid_block_{int(j) + 1}" if kind == "resnets" else "mid_attn_1", name)
  elif module in _TOP:
    name, op = _TOP[module]
    prefix = (name,)
  else:
    return None
  param = "bias" if leaf == "bias" else {"conv": "kernel", "dense": "kernel", "norm": "scale"}[op]
  return prefix + (param,), op


def _transform(value: np.ndarray, op: str, leaf: str) -> np.ndarray:
  """A diffusers (PyTorch-layout) tensor in jaxgen's layout; shapes that fit no rule pass as they are (the
  shape check names them)."""
  if leaf != "weight":
    return value
  if op == "conv" and value.ndim == 4:
    return value.transpose(2, 3, 1, 0)                    # OIHW -> HWIO
  if op == "dense" and value.ndim == 4 and value.shape[2:] == (1, 1):
    value = value.reshape(value.shape[:2])                 # a 1x1 convolution: (O, I, 1, 1) -> (O, I)
  if op == "dense" and value.ndim == 2:
    return value.T                                         # (O, I) -> (I, O)
  return value


def _map(state_dict: Mapping[str, np.ndarray], num_levels: int,
         want: Mapping[Tuple[str, ...], Tuple[int, ...]]) -> Dict[Tuple[str, ...], np.ndarray]:
  """{param path: tensor in jaxgen's layout}, checked against `want` ({path: shape}): ValueError naming the
  unknown and duplicated keys, the missing and unexpected parameters and the wrong shapes."""
  have: Dict[Tuple[str, ...], np.ndarray] = {}
  source: Dict[Tuple[str, ...], str] = {}
  unknown, duplicated = [], []
  for key, value in state_dict.items():
    target = param_target(key, num_levels)
    if target is None:
      unknown.append(key)
      continue
    path, op = target
    if path in have:
      duplicated.append(f"{key} and {source[path]} (both -> {'/'.join(path)})")
      continue
    have[path], source[path] = _transform(value, op, key.rpartition(".")[2]), key
  missing = sorted("/".join(p) for p in set(want) - set(have))
  unexpected = sorted(f"{source[p]} (-> {'/'.join(p)})" for p in set(have) - set(want))
  wrong = sorted(f"{source[p]} {tuple(np.shape(state_dict[source[p]]))} -> {'/'.join(p)} needs {tuple(want[p])}"
                 for p in set(have) & set(want) if tuple(np.shape(have[p])) != tuple(want[p]))
  problems = [(name, items) for name, items in (("unknown keys", unknown), ("keys used twice", duplicated),
                                                 ("missing parameters", missing), ("unexpected keys", unexpected),
                                                 ("wrong shapes", wrong)) if items]
  if problems:
    raise ValueError("the diffusers state dict does not fit jaxgen's U-Net: " + "; ".join(
        f"{len(items)} {name}: {', '.join(items[:8])}{', ...' if len(items) > 8 else ''}" for name, items in problems))
  return have


def _flat_shapes(tree) -> Dict[Tuple[str, ...], Tuple[int, ...]]:
  from flax import traverse_util
  from flax.core import unfreeze
  return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(unfreeze(tree)).items()}


def expected_param_shapes(model: Mapping[str, Any], image_shape: Tuple[int, int, int] = (32, 32, 3)
                          ) -> Dict[Tuple[str, ...], Tuple[int, ...]]:
  """{param path: shape} of jaxgen's UNet for config.model `model` on `image_shape` images (jax.eval_shape: no
  parameters are computed)."""
  import jax
  import jax.numpy as jnp
  from jaxgen.nn.unet import UNet
  net = UNet(**unet_kwargs(model))
  x = jax.ShapeDtypeStruct((1,) + tuple(image_shape), jnp.float32)
  t = jax.ShapeDtypeStruct((1,), jnp.int32)
  shapes = jax.eval_shape(lambda x, t: net.init(jax.random.PRNGKey(0), x, t, train=False)["params"], x, t)
  return _flat_shapes(shapes)


def converted_shapes(shapes: Mapping[str, Sequence[int]], model: Mapping[str, Any],
                     image_shape: Tuple[int, int, int] = (32, 32, 3)) -> Dict[Tuple[str, ...], Tuple[int, ...]]:
  """The shape-only conversion: {diffusers key: shape} -> {param path: shape}, through the same mapping and
  checks as the weights (zero-stride views stand in for the tensors, so a full-size model costs no memory)."""
  views = {k: np.broadcast_to(np.zeros((), np.float32), tuple(s)) for k, s in shapes.items()}
  want = expected_param_shapes(model, image_shape)
  return {p: tuple(v.shape) for p, v in _map(views, len(model["ch_mult"]), want).items()}


def convert_state_dict(state_dict: Mapping[str, np.ndarray], model: Mapping[str, Any],
                       want: Optional[Mapping[Tuple[str, ...], Tuple[int, ...]]] = None,
                       image_shape: Tuple[int, int, int] = (32, 32, 3)) -> Dict[str, Any]:
  """diffusers UNet2DModel state dict (numpy arrays) -> nested float32 params of jaxgen's UNet for config.model
  `model`; `want` ({path: shape}) defaults to expected_param_shapes(model, image_shape)."""
  from flax import traverse_util
  want = expected_param_shapes(model, image_shape) if want is None else want
  flat = _map(state_dict, len(model["ch_mult"]), want)
  return traverse_util.unflatten_dict({p: np.ascontiguousarray(v, dtype=np.float32) for p, v in flat.items()})


# -- the run directory ------------------------------------------------------------------------------------------

def _missing(path: str, what: str) -> FileNotFoundError:
  return FileNotFoundError(f"{path} does not exist: {what}. Download google/ddpm-cifar10-32's config.json, "
                           f"{WEIGHTS_FILE} and {SCHEDULER_FILE} from {HUB_URL} (e.g. huggingface-cli download "
                           f"google/ddpm-cifar10-32 --local-dir DIR) and pass that directory")


def find_source_files(src_dir: str) -> Dict[str, Optional[str]]:
  """{'config', 'weights', 'scheduler'} paths of a diffusers model directory (scheduler may be None).

  FileNotFoundError naming the missing path (and where to download the model); ValueError for a directory
  that holds only the PyTorch pickle.
  """
  if not os.path.exists(src_dir):
    raise _missing(src_dir, "SRC_DIR must be the directory of a diffusers UNet2DModel")
  if not os.path.isdir(src_dir):
    raise NotADirectoryError(f"{src_dir} is a file: SRC_DIR must be the directory that holds {CONFIG_FILE} and "
                             f"{WEIGHTS_FILE}")
  model_dir = src_dir
  if not os.path.exists(os.path.join(src_dir, CONFIG_FILE)) and os.path.exists(os.path.join(src_dir, "unet",
                                                                                            CONFIG_FILE)):
    model_dir = os.path.join(src_dir, "unet")         # a pipeline's directory
  config = os.path.join(model_dir, CONFIG_FILE)
  if not os.path.exists(config):
    raise _missing(config, "the model's config is needed")
  weights = os.path.join(model_dir, WEIGHTS_FILE)
  if not os.path.exists(weights):
    pickle = os.path.join(model_dir, PICKLE_FILE)
    if os.path.exists(pickle):
      raise ValueError(f"{pickle} is a PyTorch pickle, which jaxgen does not read (it does not depend on torch); "
                       f"download {WEIGHTS_FILE} from {HUB_URL} into {model_dir} (or write it with "
                       f"safetensors.torch.save_file where torch is installed)")
    raise _missing(weights, "the model's weights are needed")
  parent = os.path.dirname(os.path.abspath(model_dir))
  candidates = [os.path.join(model_dir, SCHEDULER_FILE), os.path.join(model_dir, "scheduler", SCHEDULER_FILE),
                os.path.join(parent, SCHEDULER_FILE), os.path.join(parent, "scheduler", SCHEDULER_FILE)]
  scheduler = next((p for p in candidates if os.path.exists(p)), None)
  return {"config": config, "weights": weights, "scheduler": scheduler}


def _read_json(path: str) -> Dict[str, Any]:
  try:
    with open(path) as f:
      value = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path} is not JSON ({e})") from None
  if not isinstance(value, dict):
    raise ValueError(f"{path} holds {type(value).__name__}, not a JSON object")
  return value


def _check_destination(dst: str) -> None:
  if os.path.exists(dst) and not os.path.isdir(dst):
    raise FileExistsError(f"DST={dst} is a file; give a new directory for the converted run")
  taken = [n for n in ("config.json", "checkpoints") if os.path.exists(os.path.join(dst, n))]
  if taken:
    raise FileExistsError(f"DST={dst} already holds a run ({', '.join(taken)}); give a new directory, or remove "
                          "it first")


def _check_network(network, model: Mapping[str, Any]) -> None:
  """The family's U-Net must be the one config.model describes (the build code must pass every field)."""
  for name, want in unet_kwargs(model).items():
    have = getattr(network, name)
    if (tuple(have) if isinstance(have, (list, tuple)) else have) != want:
      raise ValueError(f"jaxgen.diffusion.build.make_ddpm builds UNet({name}={have!r}), but the converted model "
                       f"needs {name}={want!r} (config.model.{name}): the build code does not pass it to the UNet")


def convert(src_dir: str, dst: str) -> Dict[str, Any]:
  """Convert the diffusers model in `src_dir` into the run directory `dst`; returns the `converted_from` record.

  Raises FileNotFoundError (a missing file, with where to download it), FileExistsError (dst holds a run) or
  ValueError (a config or state dict that cannot be mapped, naming the value and what is allowed).
  """
  files = find_source_files(src_dir)
  model_config = _read_json(files["config"])
  scheduler_config = _read_json(files["scheduler"]) if files["scheduler"] else None
  config = run_config(model_config, scheduler_config)
  _check_destination(dst)
  state_dict = read_safetensors(files["weights"])

  from jaxgen import registry
  from jaxgen.train import runtime
  runtime.configure_jax(config)       # the PRNG implementation of the run's keys, before JAX starts
  import jax
  import jax.numpy as jnp
  from jaxgen.data import example_batch
  from jaxgen.train import parallel, trainer
  from jaxgen.train.checkpoint import Checkpointer
  from jaxgen.train.logging import MetricWriter
  from jaxgen.train.run import run_record
  from jaxgen.train.state import TrainState

  registry.validate_config(config)
  family = registry.resolve(registry.family_entry(config.family).build)(config)
  _check_network(family.network, config.model)
  mesh = parallel.make_data_mesh()
  # What load_run restores into: the converted params must fill exactly the family's parameters.
  abstract = trainer.abstract_train_state(family, config, mesh, example_batch(config))
  params = convert_state_dict(state_dict, config.model, want=_flat_shapes(abstract.params))
  del state_dict
  _, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))      # as trainer.create_train_state
  state = TrainState.create(params=jax.tree.map(jnp.asarray, params), opt=trainer.make_optimizer(family, config),
                            rng=train_rng, ema_decay=config.optim.ema_decay)
  # (The fields' trees: the optimizer objects, static fields of the state, are distinct instances.)
  fields = lambda s: (s.step, s.params, s.opt_state, s.ema_params, s.rng)
  leaves = lambda s: [(np.shape(x), np.dtype(x.dtype)) for x in jax.tree.leaves(fields(s))]
  if jax.tree.structure(fields(state)) != jax.tree.structure(fields(abstract)) or leaves(state) != leaves(abstract):
    raise AssertionError("the converted train state does not fit the family's (a bug of the converter)")
  state = jax.device_put(state, parallel.replicated(mesh))

  os.makedirs(dst, exist_ok=True)
  ckpt = Checkpointer(os.path.join(dst, "checkpoints"), max_to_keep=config.keep_checkpoints)
  try:
    ckpt.save(0, state)
  finally:
    ckpt.close()
  converted = {"format": "diffusers UNet2DModel", "source": os.path.abspath(src_dir),
               "weights": os.path.abspath(files["weights"]), "config": os.path.abspath(files["config"]),
               "scheduler_config": files["scheduler"] and os.path.abspath(files["scheduler"]),
               "diffusers_config": model_config, "diffusers_scheduler_config": scheduler_config,
               "num_params": int(sum(np.size(v) for v in jax.tree_util.tree_leaves(params)))}
  record = run_record(config, EXPERIMENT, dst)
  record["converted_from"] = converted
  MetricWriter(dst, tensorboard=False).write_config(record)   # last: a run directory only once it is complete
  return converted


def main(argv=None) -> int:
  """The command line: `python -m jaxgen.diffusion.convert_diffusers SRC_DIR DST`; 0, or 2 with one 'error:'
  line on stderr."""
  argv = sys.argv[1:] if argv is None else list(argv)
  if len(argv) != 2 or argv[0].startswith("-"):
    print("usage: python -m jaxgen.diffusion.convert_diffusers SRC_DIR DST\n"
          f"  SRC_DIR: diffusers' {CONFIG_FILE} and {WEIGHTS_FILE} (from {HUB_URL}); DST: the new run directory",
          file=sys.stderr)
    return 2
  src, dst = argv
  try:
    converted = convert(src, dst)
  except (OSError, ValueError) as e:      # missing or unwritable files, a model that cannot be mapped
    print(f"error: {e}", file=sys.stderr, flush=True)
    return 2
  print(f"converted {converted['weights']} ({converted['num_params']:,} parameters) into the run {dst} (step 0, "
        f"params = EMA params); load it with jaxgen.train.run.load_run({dst!r}), evaluate it with "
        f"python -m experiments.evaluate --workdir={dst}", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
