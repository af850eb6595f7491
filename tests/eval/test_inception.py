"""The FID Inception port is exact: pytorch-fid's network filled with seeded weights (tests/fixtures/seeded.py,
regenerated here with numpy; no weights committed) gives the reference pool features and logits saved by
tests/fixtures/make_inception_fixture.py, through jaxgen's real converter and its Flax network."""
import json
import os
import sys

import jax
import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
sys.path.insert(0, FIXTURES)
from seeded import seeded_state_dict  # noqa: E402

from jaxgen.eval import inception  # noqa: E402
from jaxgen.eval.convert_inception import convert_state_dict  # noqa: E402


def test_converted_seeded_weights_reproduce_pytorch_fid():
  shapes = json.load(open(os.path.join(FIXTURES, "inception_shapes.json")))
  ref = np.load(os.path.join(FIXTURES, "inception_fixture.npz"))
  params = convert_state_dict(seeded_state_dict(shapes))
  pool, logits = jax.jit(inception.inception_features)(params, ref["images"])
  scale = np.abs(ref["pool"]).mean()
  assert scale > 1e-3 and np.isfinite(ref["logits"]).all()
  np.testing.assert_allclose(np.asarray(pool), ref["pool"], rtol=2e-4, atol=2e-4 * scale)
  np.testing.assert_allclose(np.asarray(logits), ref["logits"], rtol=2e-4, atol=2e-4 * np.abs(ref["logits"]).mean())


def test_converter_names_what_does_not_fit():
  shapes = json.load(open(os.path.join(FIXTURES, "inception_shapes.json")))
  sd = seeded_state_dict(shapes)
  sd["AuxLogits.conv0.conv.weight"] = np.zeros((128, 768, 1, 1), np.float32)
  del sd["fc.bias"]
  with pytest.raises(ValueError) as info:
    convert_state_dict(sd)
  message = str(info.value)
  assert "missing parameters [\"['fc']['bias']\"]" in message and "['AuxLogits']['conv0']" in message


def test_missing_weights_fail_fast_with_instructions(tmp_path, monkeypatch):
  monkeypatch.setenv(inception.WEIGHTS_ENV, str(tmp_path / "absent.msgpack"))
  with pytest.raises(FileNotFoundError, match="convert_inception"):
    inception.load_inception_params()
