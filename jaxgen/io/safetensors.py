"""Reading `.safetensors` files (the Hub's model files) through the `safetensors` package.

The weight converters (jaxgen.diffusion.convert_diffusers, jaxgen.ldm.convert_diffusers, jaxgen.clip.convert_hf)
read with `read_safetensors`; the format itself (header, offsets, validation) is the library's. NumPy has no
bfloat16, so bfloat16 tensors are read through the library's JAX loader and widened to float32.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
from safetensors import SafetensorError, safe_open


def read_safetensors(path: str) -> Dict[str, np.ndarray]:
  """{name: array} of a .safetensors file (bfloat16 widened to float32; the `__metadata__` dropped).

  Raises ValueError naming the file when the library finds it is not a well-formed safetensors file.
  """
  try:
    tensors, bf16 = {}, []
    with safe_open(path, framework="numpy") as f:
      for name in f.keys():
        if f.get_slice(name).get_dtype() == "BF16":
          bf16.append(name)
        else:
          tensors[name] = f.get_tensor(name)
    if bf16:
      with safe_open(path, framework="flax") as f:
        for name in bf16:
          tensors[name] = np.asarray(f.get_tensor(name), np.float32)
  except SafetensorError as e:
    raise ValueError(f"{path} is not a valid safetensors file: {e}") from None
  return tensors
