"""Likelihood plumbing: 2-D densities integrate to 1, bits/dim on analytic cases, held-out eval keeps the
remainder, the Bayes classifier, PSNR, config validation."""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from flow_testutil import perturb
from jaxgen.eval.likelihood import evaluate_per_example
from jaxgen.flows import dequantize as dq
from jaxgen.flows.build import make_flow, validate_flow_config
from jaxgen.flows.classifier import class_log_posteriors, make_flow_classifier
from jaxgen.flows.inverse import block_mask, psnr


def toy_config(kind):
  return ml_collections.ConfigDict(dict(data=dict(name="two_moons"),
                                        model=dict(kind=kind, num_steps=2, hidden=8, num_layers=1, num_classes=0)))


def image_config(kind, num_classes=0, **model):
  m = dict(kind=kind, num_scales=2, couplings_per_scale=1, hidden=4, num_blocks=0, scale="tanh", logit_alpha=0.05,
           num_levels=2, depth=1, coupling="affine", num_classes=num_classes)
  m.update(model)
  return ml_collections.ConfigDict(dict(data=dict(name="digits"), model=m))


@pytest.mark.parametrize("kind", ["nice", "realnvp", "glow"])
def test_2d_density_integrates_to_one(kind):
  model = make_flow(toy_config(kind))
  x = jax.random.normal(jax.random.PRNGKey(0), (64, 2))
  params = perturb(model.init(jax.random.PRNGKey(1), {"points": x}), jax.random.PRNGKey(2))
  axis = np.linspace(-8, 8, 321, dtype=np.float32)
  grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
  log_q = jax.jit(lambda g: -model.nll(params, g))(grid)
  mass = float(jnp.exp(log_q).sum() * (axis[1] - axis[0]) ** 2)
  assert abs(mass - 1.0) < 0.01, mass
  # and the density is not the base density: the flow does something
  base = -0.5 * (grid ** 2).sum(1) - math.log(2 * math.pi)
  assert float(jnp.abs(log_q - base).max()) > 1e-2


def test_bits_per_dim_analytic_logit_with_logistic_base():
  """logit preprocessing + a standard logistic density is uniform on x~ in [0, 256)^D up to (1 - 2a):
  bits/dim = 8 - log2(1 - 2a) exactly, whatever the data."""
  a = 0.05
  images = jax.random.randint(jax.random.PRNGKey(0), (5, 8, 8, 1), 0, 256).astype(jnp.uint8)
  y, ld = dq.preprocess(dq.uniform_dequantize(images, jax.random.PRNGKey(1)), "logit", a)
  log_logistic = jnp.sum(-y - 2 * jax.nn.softplus(-y), axis=(1, 2, 3))
  bpd = dq.bits_per_dim(log_logistic, ld, 64)
  np.testing.assert_allclose(bpd, 8 - math.log2(1 - 2 * a), atol=1e-4)


def test_bits_per_dim_analytic_shift_and_gaussian():
  images = jax.random.randint(jax.random.PRNGKey(0), (4, 2, 2, 3), 0, 256).astype(jnp.uint8)
  x = dq.uniform_dequantize(images, jax.random.PRNGKey(1))
  assert float(x.min()) >= 0 and float(x.max()) < 256
  y, ld = dq.preprocess(x, "shift")
  np.testing.assert_allclose(dq.bits_per_dim(jnp.zeros(4), ld, 12), 8.0, atol=1e-6)   # uniform on [-1/2, 1/2)
  # a Gaussian N(0, 1) on y: -log2 p per dim = 0.5 log2(2 pi) + y^2 / (2 ln 2), plus 8 bits
  want = 8 + np.mean(0.5 * np.log2(2 * np.pi) + np.asarray(y).reshape(4, -1) ** 2 / (2 * np.log(2)), axis=1)
  np.testing.assert_allclose(dq.bits_per_dim(dq.standard_normal_log_prob(y), ld, 12), want, rtol=1e-5)
  np.testing.assert_allclose(dq.postprocess(y, "shift"), x, atol=1e-3)


def test_quantize_to_the_digits_levels_and_bits_per_dim_of_k_levels():
  from jaxgen.data.builders.digits import digits_split_arrays
  v = np.arange(17)
  stored = ((v * 255 + 8) // 16).astype(np.uint8)          # the digits builder's mapping of 0..16
  np.testing.assert_array_equal(dq.quantize(stored, 17), v)
  images, _ = digits_split_arrays("test")
  assert set(np.unique(np.asarray(dq.quantize(images, 17))).tolist()) <= set(range(17))
  np.testing.assert_array_equal(dq.quantize(np.arange(256, dtype=np.uint8), 256), np.arange(256))
  np.testing.assert_array_equal(dq.quantize(np.arange(256, dtype=np.uint8), 32), np.arange(256) // 8)  # Glow 5 bit
  x = dq.uniform_dequantize(stored[None, :, None, None], jax.random.PRNGKey(0), 17)
  assert np.all((np.asarray(x)[0, :, 0, 0] >= v) & (np.asarray(x)[0, :, 0, 0] < v + 1))
  y, ld = dq.preprocess(x, "shift", num_bins=17)
  assert float(y.min()) >= -0.5 and float(y.max()) < 0.5
  # uniform density on [-1/2, 1/2): log2(17) bits per dim; logit + logistic: log2(17) - log2(1 - 2a)
  np.testing.assert_allclose(dq.bits_per_dim(jnp.zeros(1), ld, 17), math.log2(17), atol=1e-5)
  y, ld = dq.preprocess(x, "logit", 0.1, num_bins=17)
  bpd = dq.bits_per_dim(jnp.sum(-y - 2 * jax.nn.softplus(-y), axis=(1, 2, 3)), ld, 17)
  np.testing.assert_allclose(bpd, math.log2(17) - math.log2(0.8), atol=1e-4)
  np.testing.assert_allclose(dq.postprocess(y, "logit", 0.1, 17), x, atol=1e-4)
  for bad in (1, 257, 16.0, True):
    with pytest.raises(ValueError, match="num_bins"):
      dq.check_num_bins(bad)


def test_model_round_trip_and_identity_bits_per_dim():
  model = make_flow(image_config("realnvp"))
  images = jax.random.randint(jax.random.PRNGKey(0), (3, 8, 8, 1), 0, 256).astype(jnp.uint8)
  params = model.init(jax.random.PRNGKey(1), {"image": images})
  eps = model.encode(params, images)
  assert eps.shape == (3, 64)
  np.testing.assert_allclose(model.decode(params, eps), images.astype(np.float32) / 127.5 - 1, atol=1e-4)
  # at init (zero last layers, tanh scale) the flow is the identity: bits/dim = Gaussian on logit(y)
  rng = jax.random.PRNGKey(2)
  y, ld = model.to_flow_space(images, rng)
  want = dq.bits_per_dim(dq.standard_normal_log_prob(y), ld, 64)
  np.testing.assert_allclose(model.nll(params, images, rng), want, rtol=1e-5)
  # with the digits' 17 levels the round trip lands on the stored 8-bit values (within their rounding)
  model17 = make_flow(image_config("glow", num_bins=17, preprocessing="logit"))
  from jaxgen.data.builders.digits import digits_split_arrays
  digits = digits_split_arrays("test")[0][:4]
  p17 = perturb(model17.init(jax.random.PRNGKey(3), {"image": digits}), jax.random.PRNGKey(4))
  np.testing.assert_allclose(model17.decode(p17, model17.encode(p17, digits)), digits / 127.5 - 1, atol=1.01 / 255)


def test_evaluate_per_example_keeps_the_remainder(capsys):
  x = np.arange(10, dtype=np.float32)
  calls = []

  def fn(b, key):
    calls.append(len(b["x"]))
    return b["x"] * 2
  out = evaluate_per_example(fn, {"x": x}, 4)
  np.testing.assert_array_equal(out, x * 2)
  assert calls == [4, 4, 4] and capsys.readouterr().err == ""        # silent unless asked for progress
  lines = []
  evaluate_per_example(fn, {"x": x}, 4, progress="vlb", log=lines.append)   # the held-out evaluations' progress
  assert lines[0] == "vlb 0/10 (0%) | batches of 4; the first may compile" and lines[-1].startswith("vlb 10/10 (100%)")
  with pytest.raises(ValueError, match="batch_size"):
    evaluate_per_example(fn, {"x": x}, 0)


def test_bayes_classifier_matches_separate_posteriors():
  model = make_flow(image_config("glow", num_classes=10))
  images = jax.random.randint(jax.random.PRNGKey(0), (6, 8, 8, 1), 0, 256).astype(jnp.uint8)
  labels = jnp.arange(6)
  params = perturb(model.init(jax.random.PRNGKey(1), {"image": images, "label": labels}), jax.random.PRNGKey(2))
  log_prior = jnp.log(jnp.linspace(1.0, 2.0, 10) / jnp.linspace(1.0, 2.0, 10).sum())
  pred, post = make_flow_classifier(model, params, log_prior)(images)
  # separately: log p(x | y) for each class from the per-class bits/dim of the mid-point images
  nll = jax.jit(lambda p, x, y: model.nll(p, x, None, y))                 # one compile for the 10 classes
  ll = np.stack([-np.asarray(nll(params, images, jnp.full((6,), c))) * 64 * math.log(2) for c in range(10)], axis=1)
  joint = ll + np.asarray(log_prior)
  want_post = joint - np.log(np.exp(joint - joint.max(1, keepdims=True)).sum(1, keepdims=True)) - joint.max(1, keepdims=True)
  np.testing.assert_allclose(post, want_post, atol=2e-3)
  np.testing.assert_array_equal(pred, np.argmax(want_post, axis=1))
  np.testing.assert_allclose(np.exp(np.asarray(class_log_posteriors(ll, log_prior))).sum(1), 1.0, atol=1e-4)
  assert len(set(np.asarray(pred).tolist())) > 1 or float(np.ptp(ll)) > 0


def test_psnr_and_mask():
  t = np.zeros((2, 4, 4, 1))
  np.testing.assert_allclose(psnr(t + 0.1, t), [20.0, 20.0], atol=1e-9)      # 10 log10(1 / 0.01)
  np.testing.assert_allclose(psnr(t + 25.5, t, max_value=255.0), 20.0, atol=1e-9)
  m = block_mask((8, 8, 1), 4)
  assert m.sum() == 48 and m[2:6, 2:6].sum() == 0


def test_config_validation_names_bad_values():
  for cfg, match in [(toy_config("maf"), "model.kind"), (image_config("nice"), "nice"),
                     (image_config("glow", num_levels=4), "odd size"), (image_config("glow", num_classes=3), "num_classes"),
                     (image_config("realnvp", scale="exp"), "model.scale"),
                     (image_config("realnvp", logit_alpha=0.5), "logit_alpha"),
                     (image_config("glow", preprocessing="exp"), "model.preprocessing"),
                     (image_config("glow", num_bins=512), "model.num_bins=512"),
                     (image_config("glow", conv_impl="cudnn"), "model.conv_impl")]:
    with pytest.raises(ValueError, match=match):
      validate_flow_config(cfg)


def test_experiment_presets_validate():
  from experiments import flow_classifier, flow_inverse, flow_toy2d, glow_cifar, realnvp_cifar
  for mod in (flow_toy2d, glow_cifar, realnvp_cifar, flow_classifier):
    for preset in mod.PRESETS:
      validate_flow_config(mod.get_config(preset))
    with pytest.raises(ValueError, match="unknown preset"):
      mod.get_config("huge")
  with pytest.raises(ValueError, match="unknown preset"):
    flow_inverse.get_config("huge")
