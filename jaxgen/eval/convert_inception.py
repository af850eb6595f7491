"""Convert pytorch-fid's FID Inception weights into jaxgen's Flax parameters (jaxgen.eval.inception).

  python -m jaxgen.eval.convert_inception pt_inception-2015-12-05-6726825d.pth ~/.cache/jaxgen/inception_fid_2015-12-05.msgpack

Reading the .pth file needs torch (run it once, anywhere torch is installed; jaxgen itself loads the result
without PyTorch). The mapping (`convert_state_dict`, a dict of numpy arrays in) is what the tests check:
  <module>.conv.weight (O, I, kh, kw)  -> <module>/conv/kernel (kh, kw, I, O)
  <module>.bn.{weight, bias, running_mean, running_var} -> <module>/bn_{scale, bias, mean, var}
  fc.weight (1008, 2048), fc.bias       -> fc/kernel (2048, 1008), fc/bias
Every key must map onto the network and every parameter must be filled, or the conversion fails naming them.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, Mapping

import numpy as np

_BN = {"weight": "bn_scale", "bias": "bn_bias", "running_mean": "bn_mean", "running_var": "bn_var"}


def convert_state_dict(state_dict: Mapping[str, np.ndarray]) -> Dict:
  """pytorch-fid state dict (numpy arrays) -> Flax params of jaxgen.eval.inception.FIDInceptionV3."""
  import jax
  from jaxgen.eval.inception import abstract_params
  params: Dict = {}
  unknown = []
  for key, value in state_dict.items():
    parts = key.split(".")
    value = np.asarray(value)
    if parts[-1] == "num_batches_tracked":
      continue
    if parts[0] == "fc" and len(parts) == 2:
      path, leaf = ["fc"], {"weight": "kernel", "bias": "bias"}.get(parts[1])
      value = value.T if parts[1] == "weight" else value
    elif len(parts) >= 3 and parts[-2] == "conv" and parts[-1] == "weight":
      path, leaf = parts[:-2] + ["conv"], "kernel"
      value = value.transpose(2, 3, 1, 0)
    elif len(parts) >= 3 and parts[-2] == "bn" and parts[-1] in _BN:
      path, leaf = parts[:-2], _BN[parts[-1]]
    else:
      path, leaf = None, None
    if leaf is None:
      unknown.append(key)
      continue
    node = params
    for p in path:
      node = node.setdefault(p, {})
    node[leaf] = value.astype(np.float32)
  want = abstract_params()
  flat_want = {jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(want)}
  try:
    flat_have = {jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(params)}
  except Exception:  # pragma: no cover - a malformed tree
    flat_have = {}
  missing = sorted(set(flat_want) - set(flat_have))
  extra = sorted(set(flat_have) - set(flat_want))
  wrong = sorted(k for k in set(flat_want) & set(flat_have) if tuple(flat_want[k]) != tuple(flat_have[k]))
  if unknown or missing or extra or wrong:
    raise ValueError(f"state dict does not fit the FID Inception: unknown keys {unknown[:5]}, missing parameters "
                     f"{missing[:5]}, unexpected {extra[:5]}, wrong shapes {wrong[:5]} (of {len(unknown)}, "
                     f"{len(missing)}, {len(extra)}, {len(wrong)})")
  return params


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  if len(argv) != 2:
    print("usage: python -m jaxgen.eval.convert_inception SRC.pth DST.msgpack", file=sys.stderr)
    sys.exit(2)
  src, dst = argv
  try:
    import torch
  except ImportError:
    print("error: reading the .pth file needs torch (pip install torch); jaxgen loads the converted file "
          "without it", file=sys.stderr)
    sys.exit(2)
  from flax import serialization
  from jaxgen.train.logging import TaskProgress
  stages = TaskProgress(3, "convert", quiet_start=True)      # a line as each stage starts, on stderr
  stages.stage(f"reading {src} ({os.path.getsize(src) / 2**20:.1f} MiB)")
  state = torch.load(src, map_location="cpu")
  stages.stage(f"converting {len(state)} tensors into the FID Inception's parameters and checking them")
  params = convert_state_dict({k: v.numpy() for k, v in state.items()})
  stages.stage(f"writing {dst}")
  os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
  with open(dst, "wb") as f:
    f.write(serialization.to_bytes(params))
  print(f"wrote {dst}")


if __name__ == "__main__":
  main()
