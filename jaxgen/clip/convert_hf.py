"""Convert a Hugging Face `CLIPModel` (OpenAI's CLIP as transformers ships it) into a jaxgen CLIP run directory.

  python -m jaxgen.clip.convert_hf SRC_DIR DST

SRC_DIR holds transformers' `config.json`, `model.safetensors`, `vocab.json` and `merges.txt` (download them, e.g.
`huggingface-cli download openai/clip-vit-base-patch32 config.json model.safetensors vocab.json merges.txt
--local-dir SRC_DIR`; `tokenizer_config.json`, when there, names the pad token, and `preprocessor_config.json`
the pixel mean and std). DST becomes a run of `experiments.clip_shapes` (its 'paper' preset, with `config.model`
taken from config.json: the towers' sizes, `image_size`, `activation`, `norm_eps`, the BPE vocabulary, context
length and pooling rule) whose checkpoint, at step 0, holds params = EMA params = the converted weights and a
fresh optimizer state; vocab.json and merges.txt are copied to DST/tokenizer/ (config.model.tokenizer = 'bpe'),
and config.json records the conversion under `converted_from`. `jaxgen.clip.load_clip(DST)` (or `load_run`)
restores it; `jaxgen.clip.encode_text` and `score` tokenize captions with its BPE. Images: uint8 images (NHWC) of
`image_size` (resizing and cropping are the caller's) are normalised as transformers' CLIPImageProcessor does,
(x / 255 - mean) / std, with the mean and std of `preprocessor_config.json` when SRC_DIR has one, else OpenAI's
(config.model.image_mean / image_std); float images are taken as already normalised.

Reading the weights needs neither torch nor the `safetensors` package (jaxgen.io.safetensors); a PyTorch pickle
(`pytorch_model.bin`) is refused.

The mapping (`param_target`; L = a tower's layer index):
  vision_model.embeddings.patch_embedding (no bias)   -> image_encoder/conv1 (OIHW -> HWIO)
  vision_model.embeddings.class_embedding             -> image_encoder/class_embedding
  vision_model.embeddings.position_embedding          -> image_encoder/positional_embedding
  vision_model.pre_layrnorm, post_layernorm           -> image_encoder/ln_pre, ln_post
  visual_projection (no bias)                         -> image_encoder/proj
  text_model.embeddings.token_embedding               -> text_encoder/token_embedding
  text_model.embeddings.position_embedding            -> text_encoder/positional_embedding
  text_model.final_layer_norm                         -> text_encoder/ln_final
  text_projection (no bias), logit_scale              -> text_projection, logit_scale
  {vision,text}_model.encoder.layers.L.*              -> {image,text}_encoder/transformer/block_L/*:
      self_attn.q_proj / k_proj / v_proj  -> attn/query / key / value ((O, I) -> (I, heads, head width))
      self_attn.out_proj                  -> attn/out ((O, I) -> (heads, head width, O))
      layer_norm1, layer_norm2            -> ln_attn, ln_mlp
      mlp.fc1, mlp.fc2                    -> mlp_in, mlp_out ((O, I) -> (I, O))
LayerNorm weights become scales. `position_ids` buffers (older transformers saved them) are skipped. Every other
source key must be used exactly once and every parameter of the family filled with its shape, or the conversion
fails naming them. transformers pools the text at the end-of-text token: for the legacy eos_token_id = 2 of
OpenAI's original configs at the largest id (text_pool 'argmax', which needs <|endoftext|> to be the largest id
of vocab.json), otherwise at the first eos_token_id (text_pool 'eos'). Its logits are exp(logit_scale) times the
cosines, unclipped; jaxgen clips exp(logit_scale) at 100 (OpenAI's trained value is log 100).
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from jaxgen.clip.tokenizer import (BOS, EOS, MERGES_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_DIR, VOCAB_FILE,
                                   pad_token_of)
from jaxgen.io.safetensors import read_safetensors
from jaxgen.io.state_dict import (check_destination, check_fit, converter_main, find_model_files, flat_shapes,
                                  read_json)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_FILE = "pytorch_model.bin"
EXPERIMENT = "experiments.clip_shapes"        # the experiment a converted run is recorded as (its 'paper' preset)
HUB_URL = "https://huggingface.co/openai/clip-vit-base-patch32"
HIDDEN_ACTS = {"quick_gelu": "quick_gelu", "gelu": "gelu"}   # transformers' hidden_act -> jaxgen's activation
LEGACY_EOS_ID = 2             # transformers: eos_token_id == 2 means "pool at the largest id" (OpenAI's configs)

# transformers' CLIPTextConfig / CLIPVisionConfig / CLIPConfig defaults: what a config.json that leaves a field
# out gets when transformers loads it.
TEXT_DEFAULTS = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                     num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                     pad_token_id=1, bos_token_id=49406, eos_token_id=49407)
VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                       num_channels=3, image_size=224, patch_size=32, hidden_act="quick_gelu", layer_norm_eps=1e-5)
CLIP_DEFAULTS = dict(projection_dim=512)
PREPROCESSOR_FILE = "preprocessor_config.json"
# transformers' CLIPImageProcessor defaults: OpenAI's per-channel mean and std of [0, 1] pixels.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


# -- the config -------------------------------------------------------------------------------------------------

def _refuse(field: str, value: Any, allowed: str) -> ValueError:
  return ValueError(f"{CONFIG_FILE}: {field}={value!r} cannot be converted to jaxgen's CLIP; {allowed}")


def _int(c: Mapping[str, Any], where: str, field: str, minimum: int = 1) -> int:
  value = c[field]
  if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
    raise _refuse(f"{where}{field}", value, f"allowed: an integer >= {minimum}")
  return value


def model_config_from_hf(config: Mapping[str, Any]) -> Dict[str, Any]:
  """transformers' CLIPConfig (config.json) -> jaxgen's config.model fields; ValueError naming the field, its
  value and what is allowed when jaxgen's CLIP cannot express it. Fields left out take transformers' defaults."""
  model_type = config.get("model_type", "clip")
  if model_type != "clip":
    raise _refuse("model_type", model_type, "allowed: 'clip' (transformers' CLIPModel: a ViT image tower and a causal "
                  "text transformer)")
  archs = config.get("architectures") or ["CLIPModel"]
  if "CLIPModel" not in archs:
    raise _refuse("architectures", archs, "allowed: ['CLIPModel']")
  t = dict(TEXT_DEFAULTS, **(config.get("text_config") or {}))
  v = dict(VISION_DEFAULTS, **(config.get("vision_config") or {}))
  c = dict(CLIP_DEFAULTS, **{k: config[k] for k in CLIP_DEFAULTS if k in config})
  if v.get("model_type", "clip_vision_model") != "clip_vision_model":
    raise _refuse("vision_config.model_type", v["model_type"], "allowed: 'clip_vision_model' (a ViT; jaxgen has no "
                  "ResNet or other image tower to convert into)")
  if t.get("model_type", "clip_text_model") != "clip_text_model":
    raise _refuse("text_config.model_type", t["model_type"], "allowed: 'clip_text_model'")
  acts = {}
  for where, tower in (("text_config.", t), ("vision_config.", v)):
    if tower["hidden_act"] not in HIDDEN_ACTS:
      raise _refuse(f"{where}hidden_act", tower["hidden_act"], f"allowed: {', '.join(map(repr, HIDDEN_ACTS))}")
    acts[where] = HIDDEN_ACTS[tower["hidden_act"]]
    eps = tower["layer_norm_eps"]
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
      raise _refuse(f"{where}layer_norm_eps", eps, "allowed: a positive number")
    for field in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
      _int(tower, where, field)
    if tower["hidden_size"] % tower["num_attention_heads"]:
      raise _refuse(f"{where}num_attention_heads", tower["num_attention_heads"],
                    f"allowed: a divisor of hidden_size={tower['hidden_size']}")
  if acts["text_config."] != acts["vision_config."]:
    raise _refuse("text_config.hidden_act", t["hidden_act"], f"allowed: the vision tower's, "
                  f"{v['hidden_act']!r} (jaxgen's CLIP has one activation for both towers)")
  if float(t["layer_norm_eps"]) != float(v["layer_norm_eps"]):
    raise _refuse("text_config.layer_norm_eps", t["layer_norm_eps"], f"allowed: the vision tower's, "
                  f"{v['layer_norm_eps']!r} (one epsilon for both towers)")
  ratio = v["intermediate_size"] / v["hidden_size"]
  if t["intermediate_size"] != int(ratio * t["hidden_size"]):
    raise _refuse("text_config.intermediate_size", t["intermediate_size"],
                  f"allowed: {int(ratio * t['hidden_size'])}, the vision tower's ratio {ratio:g} of intermediate to "
                  "hidden size (one mlp_ratio for both towers)")
  if _int(v, "vision_config.", "num_channels") != 3:
    raise _refuse("vision_config.num_channels", v["num_channels"], "allowed: 3 (RGB)")
  size, patch = _int(v, "vision_config.", "image_size"), _int(v, "vision_config.", "patch_size")
  if size % patch:
    raise _refuse("vision_config.patch_size", patch, f"allowed: a divisor of image_size={size}")
  vocab = _int(t, "text_config.", "vocab_size")
  eos = t["eos_token_id"]
  if eos == LEGACY_EOS_ID:
    pool = dict(text_pool="argmax")
  elif isinstance(eos, int) and not isinstance(eos, bool) and 0 <= eos < vocab:
    pool = dict(text_pool="eos", eos_id=eos)
  else:
    raise _refuse("text_config.eos_token_id", eos, f"allowed: {LEGACY_EOS_ID} (transformers' legacy value: pool at "
                  f"the largest id) or an id in [0, {vocab})")
  return dict(patch_size=patch, image_size=size, vision_width=v["hidden_size"], vision_depth=v["num_hidden_layers"],
              vision_heads=v["num_attention_heads"], text_width=t["hidden_size"], text_depth=t["num_hidden_layers"],
              text_heads=t["num_attention_heads"], text_len=_int(t, "text_config.", "max_position_embeddings", 2),
              embed_dim=_int(c, "", "projection_dim"), mlp_ratio=ratio, activation=acts["vision_config."],
              norm_eps=float(v["layer_norm_eps"]), scan=False, tokenizer="bpe", vocab_size=vocab, **pool)


def pixel_norm_from_hf(preprocessor: Optional[Mapping[str, Any]]) -> Dict[str, Tuple[float, ...]]:
  """config.model.image_mean / image_std from preprocessor_config.json (None or fields left out: transformers'
  defaults, OpenAI's; do_normalize false: mean 0, std 1)."""
  p = dict(preprocessor or {})
  if p.get("do_normalize", True) is False:
    return dict(image_mean=(0.0, 0.0, 0.0), image_std=(1.0, 1.0, 1.0))
  out = {}
  for field, default in (("image_mean", OPENAI_MEAN), ("image_std", OPENAI_STD)):
    value = p.get(field, default)
    if (not isinstance(value, (list, tuple)) or len(value) != 3 or
        not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
      raise ValueError(f"{PREPROCESSOR_FILE}: {field}={value!r} cannot be converted; allowed: 3 numbers, one per "
                       "RGB channel")
    out[field] = tuple(float(x) for x in value)
  return out


def run_config(hf_config: Mapping[str, Any], pad_token: str = EOS,
               preprocessor: Optional[Mapping[str, Any]] = None):
  """The converted run's config: the library's CLIP 'paper' config (jaxgen.clip.config, experiments.clip_shapes'
  preset) with config.model from config.json (and the pixel normalisation of preprocessor_config.json) and no
  periodic evaluation (the zero-shot evaluation reads the shapes words)."""
  from jaxgen.clip.config import clip_config
  config = clip_config("paper")
  model = model_config_from_hf(hf_config)
  model["pad_token"] = pad_token
  model.update(pixel_norm_from_hf(preprocessor))
  config.model.update(model)
  config.evals = ()
  config.batch_size = 256            # the example batch the state's shapes are computed from (nothing is trained)
  return config


# -- the weights ------------------------------------------------------------------------------------------------

_LAYER = {"self_attn.q_proj": ("attn", "query"), "self_attn.k_proj": ("attn", "key"),
          "self_attn.v_proj": ("attn", "value"), "self_attn.out_proj": ("attn", "out"), "layer_norm1": ("ln_attn",),
          "layer_norm2": ("ln_mlp",), "mlp.fc1": ("mlp_in",), "mlp.fc2": ("mlp_out",)}
_TOP = {"vision_model.embeddings.patch_embedding": (("image_encoder", "conv1"), "conv"),
        "vision_model.pre_layrnorm": (("image_encoder", "ln_pre"), "norm"),
        "vision_model.post_layernorm": (("image_encoder", "ln_post"), "norm"),
        "visual_projection": (("image_encoder", "proj"), "dense"),
        "text_model.embeddings.token_embedding": (("text_encoder", "token_embedding"), "embed"),
        "text_model.final_layer_norm": (("text_encoder", "ln_final"), "norm"),
        "text_projection": (("text_projection",), "dense")}
_PARAMS = {"vision_model.embeddings.class_embedding": ("image_encoder", "class_embedding"),
           "vision_model.embeddings.position_embedding.weight": ("image_encoder", "positional_embedding"),
           "text_model.embeddings.position_embedding.weight": ("text_encoder", "positional_embedding"),
           "logit_scale": ("logit_scale",)}
_LAYER_KEY = re.compile(r"^(vision|text)_model\.encoder\.layers\.(\d+)\.(.+)$")
SKIPPED = re.compile(r"(^|\.)position_ids$")     # buffers, not parameters


def param_target(key: str) -> Optional[Tuple[Tuple[str, ...], str]]:
  """(path in the family's params, kind) of a transformers CLIPModel state-dict key; None when the key has no
  place in jaxgen's CLIP. E.g. 'text_model.encoder.layers.3.self_attn.q_proj.weight' ->
  (('params', 'text_encoder', 'transformer', 'block_3', 'attn', 'query', 'kernel'), 'qkv')."""
  if key in _PARAMS:
    return ("params",) + _PARAMS[key], "as_is"
  module, _, leaf = key.rpartition(".")
  if leaf not in ("weight", "bias"):
    return None
  m = _LAYER_KEY.match(module)
  if m:
    tower, layer, sub = m.groups()
    if sub not in _LAYER:
      return None
    prefix = ("image_encoder" if tower == "vision" else "text_encoder", "transformer", f"block_{int(layer)}") + \
        _LAYER[sub]
    op = {"query": "qkv", "key": "qkv", "value": "qkv", "out": "out"}.get(prefix[-1], "norm" if prefix[-1].startswith(
        "ln_") else "dense")
  elif module in _TOP:
    prefix, op = _TOP[module]
  else:
    return None
  if leaf == "bias" and op in ("conv", "embed"):
    return None                                       # jaxgen's patch embedding and token embedding have none
  param = "bias" if leaf == "bias" else {"conv": "kernel", "dense": "kernel", "qkv": "kernel", "out": "kernel",
                                         "norm": "scale", "embed": "embedding"}[op]
  return ("params",) + prefix + (param,), op


def _transform(value: np.ndarray, op: str, leaf: str, want: Optional[Tuple[int, ...]]) -> np.ndarray:
  """A transformers (PyTorch-layout) tensor in jaxgen's layout; shapes that fit no rule pass as they are (the
  shape check names them)."""
  if op == "conv" and value.ndim == 4:
    return value.transpose(2, 3, 1, 0)                          # OIHW -> HWIO
  if op in ("dense", "qkv", "out") and leaf == "weight" and value.ndim == 2:
    value = value.T                                             # (O, I) -> (I, O)
  if op == "qkv" and want is not None and value.size == int(np.prod(want)):
    return value.reshape(want)                                  # (I, heads * d) -> (I, heads, d); bias (heads, d)
  if op == "out" and leaf == "weight" and want is not None and value.size == int(np.prod(want)):
    return value.reshape(want)                                  # (heads * d, O) -> (heads, d, O)
  return value


def _map(state_dict: Mapping[str, np.ndarray], want: Mapping[Tuple[str, ...], Tuple[int, ...]]
         ) -> Dict[Tuple[str, ...], np.ndarray]:
  """{param path: tensor in jaxgen's layout}, checked against `want` ({path: shape}): ValueError naming the
  unknown and duplicated keys, the missing and unexpected parameters and the wrong shapes."""
  have: Dict[Tuple[str, ...], np.ndarray] = {}
  source: Dict[Tuple[str, ...], str] = {}
  unknown, duplicated = [], []
  for key, value in state_dict.items():
    if SKIPPED.search(key):
      continue
    target = param_target(key)
    if target is None:
      unknown.append(key)
      continue
    path, op = target
    if path in have:
      duplicated.append(f"{key} and {source[path]} (both -> {'/'.join(path)})")
      continue
    value = np.asarray(value)
    shape = want.get(path)
    # A (heads * d,) projection bias and (O, I) weights fit only when the sizes agree; the shape check names
    # those that do not.
    have[path], source[path] = _transform(value, op, key.rpartition(".")[2], shape), key
  check_fit(have, source, want, state_dict, unknown=unknown, duplicated=duplicated,
            what="the transformers CLIPModel state dict does not fit jaxgen's CLIP")
  return have


def convert_state_dict(state_dict: Mapping[str, np.ndarray], want: Mapping[Tuple[str, ...], Tuple[int, ...]]
                       ) -> Dict[str, Any]:
  """transformers CLIPModel state dict (numpy arrays) -> the nested float32 params ({'params': ...}) of the
  shapes `want` ({path: shape}, the family's)."""
  from flax import traverse_util
  flat = _map(state_dict, want)
  # (np.array, not np.ascontiguousarray, which makes the scalar logit_scale 1-d.)
  return traverse_util.unflatten_dict({p: np.array(v, dtype=np.float32, order="C") for p, v in flat.items()})


def expected_param_shapes(config) -> Dict[Tuple[str, ...], Tuple[int, ...]]:
  """{param path: shape} of the CLIP family of run config `config` (jax.eval_shape: nothing is computed)."""
  import jax
  from jaxgen.clip.build import make_clip
  from jaxgen.data import example_batch
  family = make_clip(config)
  return flat_shapes(jax.eval_shape(lambda b: family.init(jax.random.PRNGKey(0), b), example_batch(config, 1)))


def converted_shapes(shapes: Mapping[str, Any], hf_config: Mapping[str, Any]) -> Dict[Tuple[str, ...], Tuple[int, ...]]:
  """The shape-only conversion: {transformers key: shape} -> {param path: shape}, through the same mapping and
  checks as the weights (zero-stride views stand in for the tensors, so a full-size model costs no memory)."""
  views = {k: np.broadcast_to(np.zeros((), np.float32), tuple(s)) for k, s in shapes.items()}
  want = expected_param_shapes(run_config(hf_config))
  return {p: tuple(v.shape) for p, v in _map(views, want).items()}


# -- the run directory ------------------------------------------------------------------------------------------

def _missing(path: str, what: str) -> FileNotFoundError:
  return FileNotFoundError(f"{path} does not exist: {what}. Download a CLIPModel's {CONFIG_FILE}, {WEIGHTS_FILE}, "
                           f"{VOCAB_FILE} and {MERGES_FILE} (e.g. from {HUB_URL}: huggingface-cli download "
                           f"openai/clip-vit-base-patch32 --local-dir DIR) and pass that directory")


def find_source_files(src_dir: str) -> Dict[str, str]:
  """{'config', 'weights', 'vocab', 'merges'} paths of a transformers CLIPModel directory; FileNotFoundError naming
  the missing path (and where to download a model); ValueError for a directory with only the PyTorch pickle."""
  files = find_model_files(src_dir, kind="a transformers CLIPModel", weights_file=WEIGHTS_FILE,
                           pickle_file=PICKLE_FILE, missing=_missing, config_file=CONFIG_FILE,
                           extra=(("vocab", VOCAB_FILE, "the tokenizer's files are needed"),
                                  ("merges", MERGES_FILE, "the tokenizer's files are needed")))
  files.pop("dir")
  return files


def _check_tokenizer(vocab_path: str, model: Mapping[str, Any], pad_token: str) -> None:
  """The BPE vocabulary must fit the text tower: its ids below vocab_size, the special tokens present, the pooling
  rule able to find <|endoftext|>."""
  vocab = read_json(vocab_path)
  missing = [t for t in (BOS, EOS, pad_token) if t not in vocab]
  if missing:
    raise ValueError(f"{vocab_path} lacks the tokens {missing}; a CLIP vocabulary has {BOS} and {EOS}")
  largest = max(vocab.values())
  if largest >= model["vocab_size"]:
    raise ValueError(f"{vocab_path} has ids up to {largest}; the text tower's text_config.vocab_size is "
                     f"{model['vocab_size']}")
  if model["text_pool"] == "argmax" and vocab[EOS] != largest:
    raise ValueError(f"{CONFIG_FILE}: text_config.eos_token_id=2 pools at the largest id, but {EOS} is id "
                     f"{vocab[EOS]} in {vocab_path}, not the largest ({largest}); set eos_token_id to {vocab[EOS]}")
  if model["text_pool"] == "eos" and vocab[EOS] != model["eos_id"]:
    raise ValueError(f"{CONFIG_FILE}: text_config.eos_token_id={model['eos_id']} but {EOS} is id {vocab[EOS]} in "
                     f"{vocab_path}")


def convert(src_dir: str, dst: str) -> Dict[str, Any]:
  """Convert the transformers CLIPModel in `src_dir` into the run directory `dst`; returns the `converted_from`
  record. Raises FileNotFoundError (a missing file, with where to download one), FileExistsError (dst holds a
  run) or ValueError (a config, vocabulary or state dict that cannot be mapped, naming the value and what is
  allowed)."""
  files = find_source_files(src_dir)
  hf_config = read_json(files["config"])
  pad_token = pad_token_of(src_dir)
  preprocessor_file = os.path.join(src_dir, PREPROCESSOR_FILE)
  preprocessor = read_json(preprocessor_file) if os.path.exists(preprocessor_file) else None
  config = run_config(hf_config, pad_token, preprocessor)
  _check_tokenizer(files["vocab"], config.model, pad_token)
  check_destination(dst, ("config.json", "checkpoints", TOKENIZER_DIR))
  from jaxgen.train.logging import TaskProgress
  stages = TaskProgress(3, "convert", quiet_start=True)      # a line as each stage starts, on stderr
  stages.stage(f"reading {files['weights']} ({os.path.getsize(files['weights']) / 2**20:.1f} MiB)")
  state_dict = read_safetensors(files["weights"])

  from jaxgen import registry
  from jaxgen.train import runtime
  runtime.configure_jax(config)
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
  stages.stage(f"converting {len(state_dict)} tensors into the family's parameters and checking them")
  mesh = parallel.make_data_mesh()
  abstract = trainer.abstract_train_state(family, config, mesh, example_batch(config))
  params = convert_state_dict(state_dict, flat_shapes(abstract.params))
  del state_dict
  _, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))      # as trainer.create_train_state
  state = TrainState.create(params=jax.tree.map(jnp.asarray, params), opt=trainer.make_optimizer(family, config),
                            rng=train_rng, ema_decay=config.optim.ema_decay)
  fields = lambda s: (s.step, s.params, s.opt_state, s.ema_params, s.rng)   # noqa: E731
  leaves = lambda s: [(np.shape(x), np.dtype(x.dtype)) for x in jax.tree.leaves(fields(s))]   # noqa: E731
  if jax.tree.structure(fields(state)) != jax.tree.structure(fields(abstract)) or leaves(state) != leaves(abstract):
    raise AssertionError("the converted train state does not fit the family's (a bug of the converter)")
  state = jax.device_put(state, parallel.replicated(mesh))

  stages.stage(f"writing the tokenizer and the step-0 checkpoint to {dst}")
  os.makedirs(os.path.join(dst, TOKENIZER_DIR))
  for name in ("vocab", "merges"):
    shutil.copyfile(files[name], os.path.join(dst, TOKENIZER_DIR, os.path.basename(files[name])))
  ckpt = Checkpointer(os.path.join(dst, "checkpoints"), max_to_keep=config.keep_checkpoints)
  try:
    ckpt.save(0, state)
  finally:
    ckpt.close()
  tokenizer_config = os.path.join(src_dir, TOKENIZER_CONFIG_FILE)
  converted = {"format": "transformers CLIPModel", "source": os.path.abspath(src_dir),
               "weights": os.path.abspath(files["weights"]), "config": os.path.abspath(files["config"]),
               "vocab": os.path.abspath(files["vocab"]), "merges": os.path.abspath(files["merges"]),
               "tokenizer_config": os.path.abspath(tokenizer_config) if os.path.exists(tokenizer_config) else None,
               "preprocessor_config": os.path.abspath(preprocessor_file) if preprocessor is not None else None,
               "transformers_config": hf_config,
               "num_params": int(sum(np.size(v) for v in jax.tree_util.tree_leaves(params)))}
  record = run_record(config, EXPERIMENT, dst)
  record["converted_from"] = converted
  MetricWriter(dst, tensorboard=False).write_config(record)   # last: a run directory only once it is complete
  return converted


USAGE = ("usage: python -m jaxgen.clip.convert_hf SRC_DIR DST\n"
         f"  SRC_DIR: a transformers CLIPModel's {CONFIG_FILE}, {WEIGHTS_FILE}, {VOCAB_FILE} and {MERGES_FILE} (e.g. "
         f"from {HUB_URL}); DST: the new run directory")


def main(argv=None) -> int:
  """The command line: `python -m jaxgen.clip.convert_hf SRC_DIR DST`; 0, or 2 with one 'error:' line (or the
  usage) on stderr; -h / --help: the usage and this module's description on stdout, 0."""
  return converter_main(argv, usage=USAGE, doc=__doc__, convert=convert, done=lambda c, dst: (
      f"converted {c['weights']} ({c['num_params']:,} parameters) into the run {dst} (step 0, params = EMA "
      f"params); load it with jaxgen.clip.load_clip({dst!r})"))


if __name__ == "__main__":
  sys.exit(main())
