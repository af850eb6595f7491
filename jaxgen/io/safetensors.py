"""The safetensors format with NumPy alone (no torch, no `safetensors` package).

A file is an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} (plus an
optional `__metadata__`), then the raw little-endian data. Weight converters (jaxgen.diffusion.convert_diffusers)
read the Hub's model files with it; tests write seeded fixtures with it.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional

import numpy as np

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

