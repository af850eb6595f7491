"""What the weight converters share: checking that a mapped state dict fits the Flax params it must become.

Each converter (jaxgen.diffusion.convert_diffusers, jaxgen.clip.convert_hf, jaxgen.ldm.convert_diffusers) maps
every source tensor to a flat Flax path, collecting the keys it does not know and those two keys map to; this
module names every fault at once (unknown keys, keys used twice, missing parameters, unexpected keys, wrong
shapes) in one ValueError, so a user sees the whole mismatch, not the first of it.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

Path = Tuple[str, ...]


def flat_shapes(tree) -> Dict[Path, Tuple[int, ...]]:
  """{flat path: shape} of a (possibly abstract) params pytree."""
  from flax import traverse_util
  from flax.core import unfreeze
  return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(unfreeze(tree)).items()}


def check_fit(have: Mapping[Path, Any], source: Mapping[Path, str], want: Mapping[Path, Tuple[int, ...]],
              state_dict: Mapping[str, Any], *, unknown: List[str], duplicated: List[str], what: str) -> None:
  """ValueError naming every fault of the mapped tensors `have` ({path: array}, `source` their keys) against the
  shapes `want`; `what` says whose state dict does not fit what (e.g. "the diffusers state dict does not fit
  jaxgen's U-Net")."""
  missing = sorted("/".join(p) for p in set(want) - set(have))
  unexpected = sorted(f"{source[p]} (-> {'/'.join(p)})" for p in set(have) - set(want))
  wrong = sorted(f"{source[p]} {tuple(np.shape(state_dict[source[p]]))} -> {'/'.join(p)} needs {tuple(want[p])}"
                 for p in set(have) & set(want) if tuple(np.shape(have[p])) != tuple(want[p]))
  problems = [(name, items) for name, items in (("unknown keys", unknown), ("keys used twice", duplicated),
                                                 ("missing parameters", missing), ("unexpected keys", unexpected),
                                                 ("wrong shapes", wrong)) if items]
  if problems:
    raise ValueError(f"{what}: " + "; ".join(
        f"{len(items)} {name}: {', '.join(items[:8])}{', ...' if len(items) > 8 else ''}" for name, items in problems))


def read_json(path: str) -> Dict[str, Any]:
  """A converter's JSON object file (a model's config.json, ...); ValueError naming the file when it is not one."""
  import json
  try:
    with open(path) as f:
      value = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path} is not JSON ({e})") from None
  if not isinstance(value, dict):
    raise ValueError(f"{path} holds {type(value).__name__}, not a JSON object")
  return value


def find_model_files(src_dir: str, *, kind: str, weights_file: str, pickle_file: str, missing,
                     subfolder: str = "", extra: Tuple[Tuple[str, str, str], ...] = (), download: str = "",
                     config_file: str = "config.json") -> Dict[str, str]:
  """{'dir', 'config', 'weights', and each of `extra`'s names} paths of a Hugging Face model directory SRC_DIR
  (a diffusers/transformers `save_pretrained` layout), or of the `subfolder` of a pipeline's directory (e.g. a
  Stable Diffusion pipeline's `vae/`).

  `kind` names the model in messages ("a diffusers AutoencoderKL"); `missing(path, what)` makes the converter's
  FileNotFoundError (naming where to download the model); `extra` = ((name, file, what), ...) for further required
  files (a tokenizer's vocabulary). NotADirectoryError for a file; ValueError when only the PyTorch pickle
  `pickle_file` is there (jaxgen does not depend on torch), `download` saying where the safetensors file is.
  """
  import os
  if not os.path.exists(src_dir):
    raise missing(src_dir, f"SRC_DIR must be the directory of {kind}")
  if not os.path.isdir(src_dir):
    names = [config_file, weights_file] + [f for _, f, _ in extra]
    raise NotADirectoryError(f"{src_dir} is a file: SRC_DIR must be the directory that holds "
                             f"{', '.join(names[:-1])} and {names[-1]}")
  model_dir = src_dir
  if (subfolder and not os.path.exists(os.path.join(src_dir, config_file))
      and os.path.exists(os.path.join(src_dir, subfolder, config_file))):
    model_dir = os.path.join(src_dir, subfolder)      # a pipeline's directory
  files = {"dir": model_dir, "config": os.path.join(model_dir, config_file),
           "weights": os.path.join(model_dir, weights_file)}
  if not os.path.exists(files["config"]):
    raise missing(files["config"], "the model's config is needed")
  if not os.path.exists(files["weights"]):
    pickle = os.path.join(model_dir, pickle_file)
    if os.path.exists(pickle):
      raise ValueError(f"{pickle} is a PyTorch pickle, which jaxgen does not read (it does not depend on torch); "
                       f"download {weights_file}{' from ' + download if download else ''} into {model_dir} (or "
                       "write it with safetensors.torch.save_file where torch is installed)")
    raise missing(files["weights"], "the model's weights are needed")
  for name, file, what in extra:
    files[name] = os.path.join(model_dir, file)
    if not os.path.exists(files[name]):
      raise missing(files[name], what)
  return files


def check_destination(dst: str, names: Tuple[str, ...] = ("config.json", "checkpoints")) -> None:
  """FileExistsError when DST is a file or already holds a run (any of `names`)."""
  import os
  if os.path.exists(dst) and not os.path.isdir(dst):
    raise FileExistsError(f"DST={dst} is a file; give a new directory for the converted run")
  taken = [n for n in names if os.path.exists(os.path.join(dst, n))]
  if taken:
    raise FileExistsError(f"DST={dst} already holds a run ({', '.join(taken)}); give a new directory, or remove "
                          "it first")


def converter_main(argv, *, usage: str, doc: str, convert, done, options: Tuple[str, ...] = ()) -> int:
  """A converter's command line `python -m MODULE [--NAME=VALUE ...] SRC_DIR DST`: 0, or 2 with one 'error:' line
  (or the usage) on stderr; -h / --help: the usage and `doc` (the module's description) on stdout, 0.
  `convert(src, dst, **{name: value})` returns a record, `options` naming the --NAME=VALUE options it takes (none:
  any argument starting with '-' is a usage error); `done(record, dst)` the line printed on success. OSError and
  ValueError (missing or unwritable files, a model that cannot be mapped, a bad option value) are the one-line
  errors."""
  import sys
  argv = sys.argv[1:] if argv is None else list(argv)
  if any(a in ("-h", "--help", "-help") for a in argv):
    print(usage + "\n\n" + doc.strip(), flush=True)
    return 0
  kwargs, rest = {}, []
  for a in argv:
    name, eq, value = a[2:].partition("=")
    if a.startswith("--") and name in options:
      if not eq:
        print(f"error: --{name} needs a value (--{name}=...)\n{usage}", file=sys.stderr, flush=True)
        return 2
      kwargs[name] = value
    else:
      rest.append(a)
  if len(rest) != 2 or rest[0].startswith("-"):
    print(usage, file=sys.stderr)
    return 2
  src, dst = rest
  try:
    converted = convert(src, dst, **kwargs)
  except (OSError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    return 2
  print(done(converted, dst), flush=True)
  return 0
