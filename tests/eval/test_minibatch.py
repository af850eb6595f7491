"""The one loop that fits the evaluations' small networks (feature networks, the MLP baseline): it minimises the
loss, its batch order is the seed's, and arrays of different lengths are refused."""
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgen.eval.minibatch import fit_by_minibatches


def _data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(256, 3)).astype(np.float32)
  return {"x": x, "y": x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3}


def _loss(p, batch):
  return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)


def test_fits_and_is_a_function_of_the_seed(capsys):
  p0 = {"w": jnp.zeros(3), "b": jnp.zeros(())}
  fit = lambda seed, steps=300, progress=None: fit_by_minibatches(  # noqa: E731
      _loss, p0, optax.adam(0.05), _data(), steps=steps, batch_size=32, seed=seed, progress=progress)
  p = fit(0, progress="toy fit")
  err = capsys.readouterr().err.splitlines()          # progress on stderr: a line at once, one at the end
  assert err[0] == "toy fit 0/300 (0%) | batches of 32; compiling the step"
  assert err[-1].startswith("toy fit 300/300 (100%)")
  np.testing.assert_allclose(np.asarray(p["w"]), [1.0, -2.0, 0.5], atol=0.02)
  assert abs(float(p["b"]) - 0.3) < 0.02
  a, b, c = fit(1, 5), fit(1, 5), fit(2, 5)
  np.testing.assert_array_equal(np.asarray(a["w"]), np.asarray(b["w"]))
  assert not np.array_equal(np.asarray(a["w"]), np.asarray(c["w"]))
  assert fit_by_minibatches(_loss, p0, optax.adam(0.1), _data(), steps=0, batch_size=8) is p0


def test_bad_inputs_are_named():
  data = dict(_data(), y=np.zeros(3, np.float32))
  with pytest.raises(ValueError, match="different lengths"):
    fit_by_minibatches(_loss, {}, optax.adam(0.1), data, steps=1, batch_size=8)
  with pytest.raises(ValueError, match="batch_size=0"):
    fit_by_minibatches(_loss, {}, optax.adam(0.1), _data(), steps=1, batch_size=0)
