"""Tests for the DDPM U-Net, its layers and the sinusoidal timestep embedding."""
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxgen.nn import UNet, check_unet_config, count_params, sinusoidal_embedding
from jaxgen.nn.layers import Downsample, Upsample

TINY = dict(ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,), num_groups=4)


def _init_shapes(model, x_shape):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(x_shape),
                                           jnp.zeros((x_shape[0],), jnp.int32), train=False))


def test_cifar10_unet_has_the_published_parameter_count():
  model = UNet()
  variables = _init_shapes(model, (1, 32, 32, 3))
  assert count_params(variables["params"]) == 35_746_307
  x, t = jnp.zeros((4, 32, 32, 3)), jnp.zeros((4,), jnp.int32)
  out = jax.eval_shape(lambda v: model.apply(v, x, t, train=False), variables)
  assert out.shape == (4, 32, 32, 3) and out.dtype == jnp.float32


def test_bfloat16_compute_keeps_float32_params_and_output():
  model = UNet(dtype=jnp.bfloat16, **TINY)
  x, t = jnp.zeros((2, 8, 8, 1)), jnp.zeros((2,), jnp.int32)
  variables = _init_shapes(model, x.shape)
  assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(variables)} == {jnp.dtype(jnp.float32)}
  out = jax.eval_shape(lambda v: model.apply(v, x, t, train=False), variables)
  assert out.shape == (2, 8, 8, 1) and out.dtype == jnp.float32


def test_out_ch_and_resampling_without_conv():
  model = UNet(out_ch=2, resample_with_conv=False, **{**TINY, "num_res_blocks": 2})
  x, t = jnp.zeros((3, 8, 8, 1)), jnp.zeros((3,), jnp.int32)
  variables = _init_shapes(model, x.shape)
  assert not any("sample" in name for name in variables["params"])  # no resampling convs
  out = jax.eval_shape(lambda v: model.apply(v, x, t, train=False), variables)
  assert out.shape == (3, 8, 8, 2)


@pytest.fixture(scope="module")
def tiny():
  """A tiny U-Net with real params, perturbed so the zero-initialised output conv is not zero."""
  model = UNet(**TINY)
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
  t = jnp.array([3, 700], jnp.int32)
  # 'rbg' keys and a single flat noise draw keep XLA compile time (the cost here) low.
  init = jax.jit(lambda key: model.init(key, x, t, train=False)["params"])
  params = init(jax.random.key(0, impl="rbg"))
  flat, unravel = ravel_pytree(params)
  perturbed = unravel(flat + 0.05 * jax.random.normal(jax.random.key(2, impl="rbg"), flat.shape))

  @jax.jit
  def apply_eval(params, x, t):
    return model.apply({"params": params}, x, t, train=False)

  @jax.jit
  def apply_train(params, x, t, rng):
    return model.apply({"params": params}, x, t, train=True, rngs={"dropout": rng})

  return dict(params=params, perturbed=perturbed, x=x, t=t, eval=apply_eval, train=apply_train)


def test_tiny_unet_output_shape_dtype_and_zero_init(tiny):
  out = tiny["eval"](tiny["params"], tiny["x"], tiny["t"])
  chex.assert_shape(out, (2, 8, 8, 1))
  chex.assert_type(out, jnp.float32)
  # The output conv starts at zero, so the untrained network predicts zero.
  np.testing.assert_array_equal(out, 0.0)


def test_tiny_unet_depends_on_t_and_x(tiny):
  params, x, t = tiny["perturbed"], tiny["x"], tiny["t"]
  out = tiny["eval"](params, x, t)
  chex.assert_tree_all_finite(out)
  assert not np.allclose(out, tiny["eval"](params, x, t + 1), atol=1e-6)
  assert not np.allclose(out, tiny["eval"](params, x + 0.1, t), atol=1e-6)
  # Examples in a batch do not interact.
  np.testing.assert_allclose(out[:1], tiny["eval"](params, x[:1], t[:1]), atol=1e-5)


def test_tiny_unet_dropout_only_in_training(tiny):
  params, x, t = tiny["perturbed"], tiny["x"], tiny["t"]
  a = tiny["train"](params, x, t, jax.random.key(10, impl="rbg"))
  b = tiny["train"](params, x, t, jax.random.key(11, impl="rbg"))
  assert not np.allclose(a, b, atol=1e-6)
  np.testing.assert_array_equal(a, tiny["train"](params, x, t, jax.random.key(10, impl="rbg")))
  np.testing.assert_array_equal(tiny["eval"](params, x, t), tiny["eval"](params, x, t))


@pytest.mark.parametrize("dim", [1, 6, 7, 128])
def test_sinusoidal_embedding_matches_numpy(dim):
  t = np.array([0, 1, 17, 999])
  half = dim // 2
  freqs = np.exp(-math.log(10000) * np.arange(half) / max(half - 1, 1))
  args = t[:, None].astype(np.float64) * freqs[None, :]
  expected = np.concatenate([np.sin(args), np.cos(args), np.zeros((4, dim % 2))], axis=1)
  got = sinusoidal_embedding(jnp.asarray(t), dim)
  chex.assert_shape(got, (4, dim))
  chex.assert_type(got, jnp.float32)
  np.testing.assert_allclose(got, expected, atol=2e-4)
  np.testing.assert_allclose(sinusoidal_embedding(jnp.asarray(t, jnp.float32), dim), got)


def test_sinusoidal_embedding_diffusers_options():
  """diffusers' Timesteps: exponent -log(10000) i / (half - freq_shift); flip_sin_to_cos puts cos first."""
  t, dim, half = np.array([0, 3, 500]), 8, 4
  for shift in (0.0, 1.0):
    freqs = np.exp(-math.log(10000) * np.arange(half) / (half - shift))
    args = t[:, None] * freqs[None, :]
    np.testing.assert_allclose(sinusoidal_embedding(jnp.asarray(t), dim, freq_shift=shift, flip_sin_to_cos=True),
                               np.concatenate([np.cos(args), np.sin(args)], axis=1), atol=2e-4)


def test_downsample_padding_and_class_labels():
  """padding 0 pads bottom/right (TF SAME on even sizes), 1 pads every side; a class-conditional U-Net's output
  depends on the label, and labels are required exactly when num_classes > 0."""
  x = jax.random.normal(jax.random.key(1), (1, 4, 4, 2))
  down0, down1 = Downsample(padding=0), Downsample(padding=1)
  v = down0.init(jax.random.key(0), x)
  same = jax.lax.conv_general_dilated(x, v["params"]["conv"]["kernel"], (2, 2), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(down0.apply(v, x), same, rtol=1e-5, atol=1e-6)
  assert float(jnp.max(jnp.abs(down1.apply(v, x) - same))) > 1e-3
  model = UNet(num_classes=3, **TINY)
  xs, ts = jnp.ones((2, 8, 8, 1)), jnp.array([3, 3])
  params = model.init(jax.random.key(0), xs, ts, {"label": jnp.array([0, 0])}, train=False)
  assert params["params"]["label_embed"]["embedding"].shape == (4, 32)        # 3 classes + the null class
  params = jax.tree.map(lambda p: p + 0.05, params)                            # leave the zero init
  out = model.apply(params, xs, ts, {"label": jnp.array([0, 3])}, train=False)
  assert float(jnp.max(jnp.abs(out[0] - out[1]))) > 1e-4
  with pytest.raises(ValueError, match=r"conditioned on \('label',\) but was given no condition"):
    model.apply(params, xs, ts, train=False)
  with pytest.raises(ValueError, match=r"leading axis must be the batch"):
    model.apply(params, xs, ts, {"label": jnp.array([0, 3, 1])}, train=False)
  with pytest.raises(ValueError, match=r"conditioned on \('label',\) but was given \['tokens'\]"):
    model.apply(params, xs, ts, {"tokens": jnp.zeros((2, 4), jnp.int32)}, train=False)
  with pytest.raises(ValueError, match=r"UNet\(num_classes=0\) is unconditional"):
    UNet(**TINY).init(jax.random.key(0), xs, ts, {"label": jnp.array([0, 0])}, train=False)


def test_upsample_and_downsample_without_conv():
  x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
  up = Upsample(with_conv=False).apply({}, x)
  chex.assert_shape(up, (2, 8, 8, 3))
  np.testing.assert_array_equal(up[:, ::2, ::2], x)
  np.testing.assert_array_equal(up[:, 1::2, 1::2], x)
  np.testing.assert_array_equal(Downsample(with_conv=False).apply({}, up), x)
  conv_down = jax.eval_shape(lambda: Downsample().init_with_output(jax.random.key(0), x)[0])
  chex.assert_shape(conv_down, (2, 2, 2, 3))


def test_check_unet_config_accepts_good_configs():
  check_unet_config(32, 128, (1, 2, 2, 2), 32, attn_resolutions=(16,))
  check_unet_config(8, 8, (1, 2), 4, attn_resolutions=(4,))
  check_unet_config(256, 128, (1, 1, 2, 2, 4, 4), 32, attn_resolutions=(16,))


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_size=30), r"image_size=30 is not divisible by the U-Net's down-sampling factor 8 "
                          r"\(ch_mult=\(1, 2, 2, 2\)\)"),
    (dict(num_groups=24), r"num_groups=24 does not divide"),
    (dict(ch=6, ch_mult=(2,), num_groups=4), r"num_groups=4 does not divide the channel counts \[6\]"),
    (dict(ch_mult=()), r"ch_mult=\(\) is empty"),
    (dict(ch_mult=(1, 0, 2)), r"ch_mult=\(1, 0, 2\) has entries \[0\]"),
    (dict(attn_resolutions=(16, 5)), r"contains \[5\].*allowed resolutions are \[32, 16, 8, 4\]"),
])
def test_check_unet_config_rejects_bad_configs(kwargs, match):
  config = dict(image_size=32, ch=128, ch_mult=(1, 2, 2, 2), num_groups=32, attn_resolutions=(16,))
  config.update(kwargs)
  with pytest.raises(ValueError, match=match):
    check_unet_config(**config)


def test_unet_rejects_an_image_size_it_cannot_downsample():
  with pytest.raises(ValueError, match="image_size=6 is not divisible"):
    _init_shapes(UNet(**{**TINY, "ch_mult": (1, 2, 2)}), (1, 6, 6, 1))


def test_remat_keeps_parameters_outputs_and_gradients_and_recomputes_in_the_backward_pass():
  kw = dict(TINY, dropout=0.5)
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
  t = jnp.array([3, 700])
  params = UNet(**kw).init(jax.random.key(0), x, t, train=False)["params"]
  params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(2), p.shape), params)
  assert jax.tree.structure(params) == jax.tree.structure(
      UNet(remat=True, **kw).init(jax.random.key(0), x, t, train=False)["params"])

  def loss(model):
    return lambda p: jnp.sum(model.apply({"params": p}, x, t, train=True,
                                         rngs={"dropout": jax.random.key(5)}) ** 2)
  plain, remat = loss(UNet(**kw)), loss(UNet(remat=True, **kw))
  np.testing.assert_allclose(remat(params), plain(params), rtol=1e-6)
  chex.assert_trees_all_close(jax.grad(remat)(params), jax.grad(plain)(params), rtol=1e-4, atol=1e-5)
  # The rematerialised gradient has remat regions and recomputes forward convolutions; the plain one neither.
  jr, jp = str(jax.make_jaxpr(jax.grad(remat))(params)), str(jax.make_jaxpr(jax.grad(plain))(params))
  assert "remat" in jr and "remat" not in jp
  assert jr.count("conv_general_dilated") > jp.count("conv_general_dilated")
