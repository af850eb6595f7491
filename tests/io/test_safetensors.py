"""jaxgen.io.safetensors (the `safetensors` package underneath) on a file the library wrote from torch
(tests/fixtures/make_diffusers_fixture.py made it, bfloat16 included), and damaged files named."""
import os

import numpy as np
import pytest
from safetensors.numpy import save_file

from jaxgen.io.safetensors import read_safetensors

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")

# What tests/fixtures/diffusers_tensors.safetensors holds (make_diffusers_fixture.SAFETENSORS_TENSORS).
SAFETENSORS_TENSORS = {
    "a.f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
    "b.f16": (np.arange(4) - 1.5).astype(np.float16),
    "c.bf16": np.array([[1.0, -2.5, 0.15625]], np.float32),
    "d.i64": np.array([7, -3], np.int64),
    "e.f64.scalar": np.array(0.1, np.float64),
    "f.u8": np.array([[0, 255], [1, 2]], np.uint8),
}


def test_safetensors_reader_reads_the_library_file_and_widens_bfloat16():
  tensors = read_safetensors(os.path.join(FIXTURES, "diffusers_tensors.safetensors"))
  assert sorted(tensors) == sorted(SAFETENSORS_TENSORS)
  for name, want in SAFETENSORS_TENSORS.items():
    assert tensors[name].dtype == want.dtype and tensors[name].shape == want.shape, name
    np.testing.assert_array_equal(tensors[name], want)


def test_damaged_safetensors_files_are_named(tmp_path):
  path = str(tmp_path / "t.safetensors")
  save_file({k: v for k, v in SAFETENSORS_TENSORS.items() if k != "c.bf16"}, path, metadata={"format": "pt"})
  data = open(path, "rb").read()
  open(path, "wb").write(data[:-3])                  # truncated
  with pytest.raises(ValueError, match=f"{path} is not a valid safetensors file"):
    read_safetensors(path)
  open(path, "wb").write(b"\xff" * 20)
  with pytest.raises(ValueError, match="not a valid safetensors file: .*header too large"):
    read_safetensors(path)
