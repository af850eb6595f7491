"""Convert diffusers' DDPM CIFAR-10 model (google/ddpm-cifar10-32) into a jaxgen run directory.

  python -m jaxgen.diffusion.convert_diffusers SRC_DIR DST

SRC_DIR holds diffusers' `config.json` and `diffusion_pytorch_model.safetensors` (download them from
https://huggingface.co/google/ddpm-cifar10-32, e.g. `huggingface-cli download google/ddpm-cifar10-32
--local-dir SRC_DIR`); `scheduler_config.json` is read from beside them, from `scheduler/` there or from one level
up (a pipeline's layout, with the model in `unet/`, works too). DST becomes a run of `experiments.ddpm_cifar`
(the 'paper' preset, jaxgen.diffusion.config.ddpm_config, with `config.model` and `config.diffusion` taken from
the two config files) whose checkpoint, at step 0, holds params = EMA params = the converted weights and a fresh optimizer state; its config.json
records the conversion under `converted_from`. `jaxgen.train.run.load_run(DST)` restores it, so sampling and
evaluation (experiments.evaluate) work on it as on a trained run.

Reading the weights needs neither torch nor the `safetensors` package (jaxgen.io.safetensors reads the format
with NumPy); the configs are mapped by jaxgen.diffusion.diffusers_config. A PyTorch pickle
(`diffusion_pytorch_model.bin`) is refused: jaxgen does not depend on torch.

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

import os
import re
import sys
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from jaxgen.diffusion.build import unet_kwargs
from jaxgen.diffusion.diffusers_config import CONFIG_FILE, EXPERIMENT, SCHEDULER_FILE, run_config
from jaxgen.io.safetensors import read_safetensors
from jaxgen.io.state_dict import (check_destination, check_fit, converter_main, find_model_files, flat_shapes,
                                  read_json)

HUB_URL = "https://huggingface.co/google/ddpm-cifar10-32"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
PICKLE_FILE = "diffusion_pytorch_model.bin"


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
  check_fit(have, source, want, state_dict, unknown=unknown, duplicated=duplicated,
            what="the diffusers state dict does not fit jaxgen's U-Net")
  return have


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
  return flat_shapes(shapes)


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
  """{'config', 'weights', 'scheduler'} paths of a diffusers model directory (or of a pipeline's, from its
  `unet/`); scheduler may be None. FileNotFoundError naming the missing path (and where to download the model);
  ValueError for a directory that holds only the PyTorch pickle."""
  files = find_model_files(src_dir, kind="a diffusers UNet2DModel", weights_file=WEIGHTS_FILE,
                           pickle_file=PICKLE_FILE, missing=_missing, subfolder="unet", download=HUB_URL,
                           config_file=CONFIG_FILE)
  model_dir = files.pop("dir")
  parent = os.path.dirname(os.path.abspath(model_dir))
  candidates = [os.path.join(model_dir, SCHEDULER_FILE), os.path.join(model_dir, "scheduler", SCHEDULER_FILE),
                os.path.join(parent, SCHEDULER_FILE), os.path.join(parent, "scheduler", SCHEDULER_FILE)]
  files["scheduler"] = next((p for p in candidates if os.path.exists(p)), None)
  return files


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
  model_config = read_json(files["config"])
  scheduler_config = read_json(files["scheduler"]) if files["scheduler"] else None
  config = run_config(model_config, scheduler_config)
  check_destination(dst)
  from jaxgen.train.logging import TaskProgress
  stages = TaskProgress(3, "convert", quiet_start=True)      # a line as each stage starts, on stderr
  stages.stage(f"reading {files['weights']} ({os.path.getsize(files['weights']) / 2**20:.1f} MiB)")
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
  stages.stage(f"converting {len(state_dict)} tensors into the family's parameters and checking them")
  mesh = parallel.make_data_mesh()
  # What load_run restores into: the converted params must fill exactly the family's parameters.
  abstract = trainer.abstract_train_state(family, config, mesh, example_batch(config))
  params = convert_state_dict(state_dict, config.model, want=flat_shapes(abstract.params))
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

  stages.stage(f"writing the step-0 checkpoint to {os.path.join(dst, 'checkpoints')}")
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


USAGE = ("usage: python -m jaxgen.diffusion.convert_diffusers SRC_DIR DST\n"
         f"  SRC_DIR: diffusers' {CONFIG_FILE} and {WEIGHTS_FILE} (from {HUB_URL}); DST: the new run directory")


def main(argv=None) -> int:
  """The command line: `python -m jaxgen.diffusion.convert_diffusers SRC_DIR DST`; 0, or 2 with one 'error:'
  line (or the usage) on stderr; -h / --help: the usage and this module's description on stdout, 0."""
  return converter_main(argv, usage=USAGE, doc=__doc__, convert=convert, done=lambda c, dst: (
      f"converted {c['weights']} ({c['num_params']:,} parameters) into the run {dst} (step 0, params = EMA "
      f"params); load it with jaxgen.train.run.load_run({dst!r}), evaluate it with "
      f"python -m experiments.evaluate --workdir={dst}"))


if __name__ == "__main__":
  sys.exit(main())
