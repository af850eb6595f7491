"""Map diffusers' `AutoencoderKL` (the Stable Diffusion VAE's architecture) onto jaxgen.nn.autoencoder_kl, and
convert one into a jaxgen first-stage run directory:

  python -m jaxgen.ldm.convert_diffusers [--data=NAME] SRC_DIR DST

SRC_DIR holds diffusers' `config.json` and `diffusion_pytorch_model.safetensors` (a pipeline's directory, with the
model in `vae/`, works too), e.g. `huggingface-cli download stabilityai/sd-vae-ft-mse --local-dir SRC_DIR`. DST
becomes a run of `experiments.ldm_autoencoder` (family 'ldm_autoencoder'; the 'paper' preset,
jaxgen.ldm.config.ldm_autoencoder_config, with data.name=NAME, default cifar10, an image data set of
jaxgen.data.specs.DATASETS whose channels are the model's in/out channels, and config.model from config.json)
whose checkpoint, at step 0, holds params = EMA params = the converted weights and a fresh optimizer state; its
config.json records the conversion under `converted_from`. DST/latent_scale.json holds the config's published
`scaling_factor` (default 0.18215) as the latent scale, so a DDPM with codec=dict(kind='frozen_autoencoder',
workdir=DST, scale='auto') on the same data set diffuses z * scaling_factor (docs/latent_diffusion.md).
`jaxgen.train.run.load_run(DST)` restores the run. A PyTorch pickle (`diffusion_pytorch_model.bin`) is refused.

The library functions:

  module_from_diffusers_config(config)        diffusers' config.json (a dict) -> AutoencoderKL, or ValueError
                                              naming the field, its value and what is allowed
  params_from_diffusers(state_dict, config)   {key: numpy array} -> the module's float32 params, or ValueError
                                              naming the unknown, missing, doubled and mis-shaped tensors
  read_weights(path)                          diffusion_pytorch_model.safetensors -> {key: numpy array} (NumPy
                                              only, jaxgen.io.safetensors; jaxgen does not read PyTorch pickles)

The mapping (`param_target`; diffusers' decoder up_blocks count from the lowest resolution, as jaxgen's up_{i}):
  {encoder,decoder}.conv_in, conv_out, conv_norm_out     -> {encoder,decoder}/conv_in, conv_out, norm_out
  encoder.down_blocks.i.resnets.j.*                      -> encoder/down_{i}_block_{j}/*
  encoder.down_blocks.i.downsamplers.0.conv              -> encoder/down_{i}_downsample/conv
  decoder.up_blocks.i.resnets.j.*                        -> decoder/up_{i}_block_{j}/*
  decoder.up_blocks.i.upsamplers.0.conv                  -> decoder/up_{i}_upsample/conv
  {encoder,decoder}.mid_block.resnets.0 / 1, attentions.0 -> {encoder,decoder}/mid/mid_block_1 / mid_block_2,
                                                            mid_attn_1
  quant_conv, post_quant_conv                            -> quant_conv, post_quant_conv (Dense)
  in a resnet: norm1, conv1, norm2, conv2, conv_shortcut -> norm1, conv1, norm2, conv2, nin_shortcut
  in an attention: group_norm, to_q, to_k, to_v, to_out.0 (older checkpoints: query, key, value, proj_attn)
                 -> norm, q, k, v, proj_out
Convolution weights (O, I, kh, kw) become kernels (kh, kw, I, O); linear weights (O, I) and 1x1 convolutions
(O, I, 1, 1) become Dense kernels (I, O); norm weights become GroupNorm scales. Every source key must be used
exactly once and every parameter filled with its shape. The proof, without weights: tests/ldm/test_autoencoder_kl.py
against a tiny diffusers AutoencoderKL with seeded weights (tests/fixtures/make_autoencoder_kl_fixture.py).
"""
from __future__ import annotations

import math
import os
import re
import sys
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from jaxgen.data.specs import DATASETS, dataset_names
from jaxgen.io.safetensors import read_safetensors
from jaxgen.io.state_dict import (check_destination, check_fit, converter_main, find_model_files, flat_shapes,
                                  read_json)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
PICKLE_FILE = "diffusion_pytorch_model.bin"
EXPERIMENT = "experiments.ldm_autoencoder"      # the experiment a converted run is recorded as (its 'paper' preset)
HUB_EXAMPLE = "https://huggingface.co/stabilityai/sd-vae-ft-mse"

# diffusers' AutoencoderKL.__init__ defaults (what a config.json that leaves a field out gets).
DEFAULTS = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
                up_block_types=("UpDecoderBlock2D",), block_out_channels=(64,), layers_per_block=1, act_fn="silu",
                latent_channels=4, norm_num_groups=32, sample_size=32, scaling_factor=0.18215, shift_factor=None,
                latents_mean=None, latents_std=None, force_upcast=True, use_quant_conv=True,
                use_post_quant_conv=True, mid_block_add_attention=True)
# diffusers' Encoder and Decoder fix every GroupNorm's epsilon at 1e-6 (the config has no field for it).
NORM_EPS = 1e-6
# Fields that do not change the network (scaling of the latent for the second stage, sizes, dtypes).
_IGNORED = ("sample_size", "scaling_factor", "shift_factor", "latents_mean", "latents_std", "force_upcast")


# -- the config -------------------------------------------------------------------------------------------------

def _refuse(field: str, value: Any, allowed: str) -> ValueError:
  return ValueError(f"{CONFIG_FILE}: {field}={value!r} cannot be mapped onto jaxgen's AutoencoderKL; {allowed}")


def _int(c: Mapping[str, Any], field: str, minimum: int = 1) -> int:
  value = c[field]
  if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
    raise _refuse(field, value, f"allowed: an integer >= {minimum}")
  return value


def _bool(c: Mapping[str, Any], field: str) -> bool:
  if not isinstance(c[field], bool):
    raise _refuse(field, c[field], "allowed: true or false")
  return c[field]


def module_kwargs(config: Mapping[str, Any]) -> Dict[str, Any]:
  """diffusers' AutoencoderKL config -> jaxgen.nn.autoencoder_kl.AutoencoderKL's fields; ValueError naming the
  field, its value and what is allowed. Fields left out take diffusers' defaults; `_`-prefixed fields and the
  ones that do not shape the network (sample_size, scaling_factor, ...) are ignored; unknown fields are refused."""
  class_name = config.get("_class_name", "AutoencoderKL")
  if class_name != "AutoencoderKL":
    raise _refuse("_class_name", class_name, "allowed: 'AutoencoderKL'")
  unknown = sorted(k for k in config if not k.startswith("_") and k not in DEFAULTS)
  if unknown:
    raise _refuse(unknown[0], config[unknown[0]], f"allowed fields: {', '.join(sorted(DEFAULTS))}")
  c = dict(DEFAULTS, **{k: v for k, v in config.items() if not k.startswith("_")})
  channels = c["block_out_channels"]
  if not isinstance(channels, (list, tuple)) or not channels or not all(
      isinstance(ch, int) and not isinstance(ch, bool) and ch >= 1 for ch in channels):
    raise _refuse("block_out_channels", channels, "allowed: a non-empty list of positive integers")
  channels = tuple(channels)
  for field, block in (("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")):
    types = c[field]
    if not isinstance(types, (list, tuple)) or list(types) != [block] * len(channels):
      raise _refuse(field, types, f"allowed: [{block!r}] * {len(channels)} (one per block_out_channels entry; "
                    f"jaxgen's autoencoder has no other block)")
  if c["act_fn"] != "silu":
    raise _refuse("act_fn", c["act_fn"], "allowed: 'silu'")
  groups = _int(c, "norm_num_groups")
  bad = [ch for ch in channels if ch % groups]
  if bad:
    raise _refuse("norm_num_groups", groups, f"allowed: a divisor of every block_out_channels entry ({bad} are not "
                  "multiples of it)")
  return dict(in_channels=_int(c, "in_channels"), out_channels=_int(c, "out_channels"), block_out_channels=channels,
              layers_per_block=_int(c, "layers_per_block"), latent_channels=_int(c, "latent_channels"),
              norm_num_groups=groups, norm_eps=NORM_EPS, mid_block_add_attention=_bool(c, "mid_block_add_attention"),
              use_quant_conv=_bool(c, "use_quant_conv"), use_post_quant_conv=_bool(c, "use_post_quant_conv"))


def module_from_diffusers_config(config: Mapping[str, Any]):
  """diffusers' AutoencoderKL config (config.json as a dict) -> jaxgen's AutoencoderKL (float32)."""
  from jaxgen.nn.autoencoder_kl import AutoencoderKL
  return AutoencoderKL(**module_kwargs(config))


# -- the weights ------------------------------------------------------------------------------------------------

_RESNET = {"norm1": ("norm1", "norm"), "conv1": ("conv1", "conv"), "norm2": ("norm2", "norm"),
           "conv2": ("conv2", "conv"), "conv_shortcut": ("nin_shortcut", "dense")}
_ATTN = {"group_norm": ("norm", "norm"), "to_q": ("q", "dense"), "to_k": ("k", "dense"), "to_v": ("v", "dense"),
         "to_out.0": ("proj_out", "dense"), "query": ("q", "dense"), "key": ("k", "dense"),
         "value": ("v", "dense"), "proj_attn": ("proj_out", "dense")}
_SIDE_TOP = {"conv_in": ("conv_in", "conv"), "conv_out": ("conv_out", "conv"), "conv_norm_out": ("norm_out", "norm")}
_TOP = {"quant_conv": ("quant_conv", "dense"), "post_quant_conv": ("post_quant_conv", "dense")}
_BLOCK_KEY = re.compile(r"^(encoder\.down|decoder\.up)_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$")
_RESAMPLE_KEY = re.compile(r"^(encoder\.down_blocks\.(\d+)\.downsamplers|decoder\.up_blocks\.(\d+)\.upsamplers)"
                           r"\.0\.conv$")
_MID_KEY = re.compile(r"^(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)$")
_SIDE_KEY = re.compile(r"^(encoder|decoder)\.(conv_in|conv_out|conv_norm_out)$")


def param_target(key: str) -> Optional[Tuple[Tuple[str, ...], str]]:
  """(path in jaxgen's AutoencoderKL params, kind 'conv' | 'dense' | 'norm') of a diffusers state-dict key; None
  when the key has no place in it. E.g. 'decoder.up_blocks.1.resnets.2.conv1.weight' ->
  (('decoder', 'up_1_block_2', 'conv1', 'kernel'), 'conv'). Whether the target exists in a given configuration
  is left to the shape check (an extra level or block is an unexpected key there)."""
  module, _, leaf = key.rpartition(".")
  if leaf not in ("weight", "bias"):
    return None
  m = _BLOCK_KEY.match(module)
  if m:
    side, i, j, sub = m.groups()
    if sub not in _RESNET:
      return None
    name, op = _RESNET[sub]
    prefix = (side.split(".")[0], f"{side.split('.')[1]}_{int(i)}_block_{int(j)}", name)
  elif _RESAMPLE_KEY.match(module):
    _, down, up = _RESAMPLE_KEY.match(module).groups()
    prefix = ("encoder", f"down_{int(down)}_downsample", "conv") if down is not None else \
        ("decoder", f"up_{int(up)}_upsample", "conv")
    op = "conv"
  elif _MID_KEY.match(module):
    side, kind, j, sub = _MID_KEY.match(module).groups()
    table = _RESNET if kind == "resnets" else _ATTN
    if sub not in table or int(j) > (1 if kind == "resnets" else 0):
      return None
    name, op = table[sub]
    prefix = (side, "mid", f"mid_block_{int(j) + 1}" if kind == "resnets" else "mid_attn_1", name)
  elif _SIDE_KEY.match(module):
    side, sub = _SIDE_KEY.match(module).groups()
    name, op = _SIDE_TOP[sub]
    prefix = (side, name)
  elif module in _TOP:
    name, op = _TOP[module]
    prefix = (name,)
  else:
    return None
  param = "bias" if leaf == "bias" else {"conv": "kernel", "dense": "kernel", "norm": "scale"}[op]
  return prefix + (param,), op


def _transform(value: np.ndarray, op: str, leaf: str) -> np.ndarray:
  """A diffusers (PyTorch-layout) tensor in jaxgen's layout; shapes that fit no rule pass as they are (the shape
  check names them)."""
  if leaf != "weight":
    return value
  if op == "conv" and value.ndim == 4:
    return value.transpose(2, 3, 1, 0)                    # OIHW -> HWIO
  if op == "dense" and value.ndim == 4 and value.shape[2:] == (1, 1):
    value = value.reshape(value.shape[:2])                 # a 1x1 convolution: (O, I, 1, 1) -> (O, I)
  if op == "dense" and value.ndim == 2:
    return value.T                                         # (O, I) -> (I, O)
  return value


def expected_param_shapes(module) -> Dict[Tuple[str, ...], Tuple[int, ...]]:
  """{param path: shape} of jaxgen's AutoencoderKL `module` (jax.eval_shape: no parameters are computed; the
  parameters do not depend on the image size, so the smallest one that downsamples is used)."""
  import jax
  import jax.numpy as jnp
  from flax import traverse_util
  from flax.core import unfreeze
  size = module.downsample_factor
  x = jax.ShapeDtypeStruct((1, size, size, module.in_channels), jnp.float32)
  shapes = jax.eval_shape(lambda x: module.init(jax.random.PRNGKey(0), x)["params"], x)
  return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(unfreeze(shapes)).items()}


def _map(state_dict: Mapping[str, Any], want: Mapping[Tuple[str, ...], Tuple[int, ...]]
         ) -> Dict[Tuple[str, ...], np.ndarray]:
  """{param path: tensor in jaxgen's layout}, checked against `want` ({path: shape}): ValueError naming the
  unknown and doubled keys, the missing and unexpected parameters and the wrong shapes."""
  have: Dict[Tuple[str, ...], np.ndarray] = {}
  source: Dict[Tuple[str, ...], str] = {}
  unknown, duplicated = [], []
  for key, value in state_dict.items():
    target = param_target(key)
    if target is None:
      unknown.append(key)
      continue
    path, op = target
    if path in have:
      duplicated.append(f"{key} and {source[path]} (both -> {'/'.join(path)})")
      continue
    have[path], source[path] = _transform(np.asarray(value), op, key.rpartition(".")[2]), key
  check_fit(have, source, want, state_dict, unknown=unknown, duplicated=duplicated,
            what="the diffusers state dict does not fit jaxgen's AutoencoderKL")
  return have


def params_from_diffusers(state_dict: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> Dict[str, Any]:
  """diffusers AutoencoderKL state dict ({key: numpy array}) -> nested float32 params of
  module_from_diffusers_config(config)."""
  from flax import traverse_util
  flat = _map(state_dict, expected_param_shapes(module_from_diffusers_config(config)))
  return traverse_util.unflatten_dict({p: np.ascontiguousarray(v, dtype=np.float32) for p, v in flat.items()})


def converted_shapes(shapes: Mapping[str, Any], config: Mapping[str, Any]) -> Dict[Tuple[str, ...], Tuple[int, ...]]:
  """The shape-only conversion: {diffusers key: shape} -> {param path: shape}, through the same mapping and checks
  as the weights (zero-stride views stand in for the tensors, so a full-size model costs no memory)."""
  views = {k: np.broadcast_to(np.zeros((), np.float32), tuple(s)) for k, s in shapes.items()}
  want = expected_param_shapes(module_from_diffusers_config(config))
  return {p: tuple(v.shape) for p, v in _map(views, want).items()}


def read_weights(path: str) -> Dict[str, np.ndarray]:
  """diffusion_pytorch_model.safetensors -> {key: numpy array} (NumPy only; a PyTorch pickle is refused)."""
  if path.endswith(".bin"):
    raise ValueError(f"{path} is a PyTorch pickle, which jaxgen does not read (it does not depend on torch); give "
                     f"the model's {WEIGHTS_FILE}")
  return read_safetensors(path)


# -- the run directory ------------------------------------------------------------------------------------------

def _missing(path: str, what: str) -> FileNotFoundError:
  return FileNotFoundError(f"{path} does not exist: {what}. Download a diffusers AutoencoderKL's {CONFIG_FILE} and "
                           f"{WEIGHTS_FILE} (e.g. from {HUB_EXAMPLE}: huggingface-cli download "
                           f"stabilityai/sd-vae-ft-mse --local-dir DIR) and pass that directory")


def find_source_files(src_dir: str) -> Dict[str, str]:
  """{'config', 'weights'} paths of a diffusers AutoencoderKL directory (or of a pipeline's, from its `vae/`).

  FileNotFoundError naming the missing path (and where to download a model); ValueError for a directory that
  holds only the PyTorch pickle.
  """
  files = find_model_files(src_dir, kind="a diffusers AutoencoderKL", weights_file=WEIGHTS_FILE,
                           pickle_file=PICKLE_FILE, missing=_missing, subfolder="vae", config_file=CONFIG_FILE)
  files.pop("dir")
  return files


def scaling_factor(config: Mapping[str, Any]) -> float:
  """The diffusers config's scaling_factor (diffusers' default 0.18215 when left out); ValueError unless a finite
  number > 0."""
  value = config.get("scaling_factor", DEFAULTS["scaling_factor"])
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
    raise _refuse("scaling_factor", value, "allowed: a finite number > 0 (the latent scale of the second stage)")
  return float(value)


def check_data(data: str) -> None:
  """ValueError naming the allowed data sets unless `data` is an image data set of jaxgen.data.specs.DATASETS."""
  images = dataset_names("image")
  if data not in images:
    raise ValueError(f"--data={data!r} is not an image data set of jaxgen.data.specs.DATASETS; choose one of: "
                     f"{', '.join(images)}")


def run_config(model_config: Mapping[str, Any], data: str = "cifar10"):
  """The converted run's config: the library's first-stage config (jaxgen.ldm.config.ldm_autoencoder_config
  ('paper'), the 'paper' preset of experiments.ldm_autoencoder) with data.name=`data` and config.model from the
  diffusers config; ValueError naming the field (or the data set) that does not fit."""
  from jaxgen.ldm.config import ldm_autoencoder_config
  check_data(data)
  images = dataset_names("image")
  kw = module_kwargs(model_config)
  scaling_factor(model_config)
  channels = DATASETS[data].image_shape[-1]
  for field in ("in_channels", "out_channels"):
    if kw[field] != channels:
      fit = [n for n in images if DATASETS[n].image_shape[-1] == kw[field]]
      raise ValueError(f"{CONFIG_FILE}: {field}={kw[field]} but {data} images have {channels} channels; the "
                       f"autoencoder's in/out channels are the data set's (--data with {kw[field]}-channel images: "
                       f"{', '.join(fit) or 'none in jaxgen.data.specs.DATASETS'})")
  config = ldm_autoencoder_config("paper")
  with config.unlocked():
    config.data.name = data
    config.model.update({k: kw[k] for k in ("block_out_channels", "layers_per_block", "latent_channels",
                                            "norm_num_groups", "mid_block_add_attention", "use_quant_conv",
                                            "use_post_quant_conv")})
  return config


def _check_network(network, model_config: Mapping[str, Any]) -> None:
  """The family's AutoencoderKL must be the one the diffusers config describes (the build code passes every
  field)."""
  for name, want in module_kwargs(model_config).items():
    have = getattr(network, name)
    if (tuple(have) if isinstance(have, (list, tuple)) else have) != want:
      raise ValueError(f"jaxgen.ldm.build.make_ldm_autoencoder builds AutoencoderKL({name}={have!r}), but the "
                       f"converted model needs {name}={want!r}: the build code does not pass it to the module")


def convert(src_dir: str, dst: str, data: str = "cifar10") -> Dict[str, Any]:
  """Convert the diffusers AutoencoderKL in `src_dir` into the first-stage run directory `dst` on the image data
  set `data`; returns the `converted_from` record.

  Raises FileNotFoundError (a missing file, with where to download a model), FileExistsError (dst holds a run)
  or ValueError (a config, data set or state dict that cannot be mapped, naming the value and what is allowed).
  """
  check_data(data)
  files = find_source_files(src_dir)
  model_config = read_json(files["config"])
  config = run_config(model_config, data)
  scale = scaling_factor(model_config)
  check_destination(dst)
  from jaxgen.train.logging import TaskProgress
  stages = TaskProgress(3, "convert", quiet_start=True)      # a line as each stage starts, on stderr
  stages.stage(f"reading {files['weights']} ({os.path.getsize(files['weights']) / 2**20:.1f} MiB)")
  state_dict = read_weights(files["weights"])

  from jaxgen import registry
  from jaxgen.train import runtime
  runtime.configure_jax(config)       # the PRNG implementation of the run's keys, before JAX starts
  import jax
  import jax.numpy as jnp
  from jaxgen.data import example_batch
  from jaxgen.ldm.scaling import write_latent_scale
  from jaxgen.train import parallel, trainer
  from jaxgen.train.checkpoint import Checkpointer
  from jaxgen.train.logging import MetricWriter
  from jaxgen.train.run import run_record
  from jaxgen.train.state import TrainState
  from flax import traverse_util

  registry.validate_config(config)
  family = registry.resolve(registry.family_entry(config.family).build)(config)
  _check_network(family.network, model_config)
  stages.stage(f"converting {len(state_dict)} tensors into the family's parameters and checking them")
  mesh = parallel.make_data_mesh()
  # What load_run restores into: the converted params must fill exactly the family's parameters.
  abstract = trainer.abstract_train_state(family, config, mesh, example_batch(config))
  flat = _map(state_dict, flat_shapes(abstract.params))
  params = traverse_util.unflatten_dict({p: np.ascontiguousarray(v, dtype=np.float32) for p, v in flat.items()})
  del state_dict, flat
  _, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))      # as trainer.create_train_state
  state = TrainState.create(params=jax.tree.map(jnp.asarray, params), opt=trainer.make_optimizer(family, config),
                            rng=train_rng, ema_decay=config.optim.ema_decay)
  # (The fields' trees: the optimizer objects, static fields of the state, are distinct instances.)
  fields = lambda s: (s.step, s.params, s.opt_state, s.ema_params, s.rng)   # noqa: E731
  leaves = lambda s: [(np.shape(x), np.dtype(x.dtype)) for x in jax.tree.leaves(fields(s))]   # noqa: E731
  if jax.tree.structure(fields(state)) != jax.tree.structure(fields(abstract)) or leaves(state) != leaves(abstract):
    raise AssertionError("the converted train state does not fit the family's (a bug of the converter)")
  state = jax.device_put(state, parallel.replicated(mesh))

  stages.stage(f"writing the step-0 checkpoint to {os.path.join(dst, 'checkpoints')}")
  os.makedirs(dst, exist_ok=True)
  ckpt = Checkpointer(os.path.join(dst, "checkpoints"), max_to_keep=config.keep_checkpoints)
  try:
    ckpt.save(0, state)
  finally:
    ckpt.close()
  # The published latent scale (read by a DDPM with codec.scale='auto'), at the checkpoint's step 0.
  write_latent_scale(dst, {"scale": scale, "std": 1.0 / scale, "mean": None, "num_examples": 0, "step": 0,
                           "source": f"scaling_factor of the diffusers config {os.path.abspath(files['config'])} "
                                     "(not computed from data)"})
  converted = {"format": "diffusers AutoencoderKL", "source": os.path.abspath(src_dir),
               "weights": os.path.abspath(files["weights"]), "config": os.path.abspath(files["config"]),
               "diffusers_config": model_config, "data": data, "scaling_factor": scale,
               "num_params": int(sum(np.size(v) for v in jax.tree_util.tree_leaves(params)))}
  record = run_record(config, EXPERIMENT, dst)
  record["converted_from"] = converted
  MetricWriter(dst, tensorboard=False).write_config(record)   # last: a run directory only once it is complete
  return converted


USAGE = ("usage: python -m jaxgen.ldm.convert_diffusers [--data=NAME] SRC_DIR DST\n"
         f"  SRC_DIR: a diffusers AutoencoderKL's {CONFIG_FILE} and {WEIGHTS_FILE}\n"
         "           (or a pipeline's directory, with them in vae/); DST: the new run directory\n"
         f"  --data=NAME: the image data set of the run (default cifar10; one of: {', '.join(dataset_names('image'))})")


def main(argv=None) -> int:
  """The command line: `python -m jaxgen.ldm.convert_diffusers [--data=NAME] SRC_DIR DST`; 0, or 2 with one
  'error:' line (or the usage) on stderr; -h / --help: the usage and this module's description on stdout, 0."""
  return converter_main(argv, usage=USAGE, doc=__doc__, convert=convert, options=("data",), done=lambda c, dst: (
      f"converted {c['weights']} ({c['num_params']:,} parameters) into the first-stage run {dst} on "
      f"{c['data']} (step 0, params = EMA params, latent scale {c['scaling_factor']}); load it with "
      f"jaxgen.train.run.load_run({dst!r}), or diffuse its latents with a DDPM's "
      f"codec=dict(kind='frozen_autoencoder', workdir={dst!r}, scale='auto')"))


if __name__ == "__main__":
  sys.exit(main())
