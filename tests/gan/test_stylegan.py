"""StyleGAN2 (model.kind='stylegan', jaxgen.nn.stylegan): the modulated/demodulated convolution, the equalised
learning rate and the minibatch stddev against direct numpy computations; the mapping network's own learning
rate, the tracked mean w (a generator buffer: updated by the training forward pass only, restored exactly),
truncation in W and style mixing; the smoke preset trained once (in process) and resumed."""
import json
import math
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.stylegan import MAPPING_LR_MULTIPLIER, get_config
from jaxgen import registry
from jaxgen.gan.build import make_gan, validate_gan_config
from jaxgen.nn import stylegan as sg


# -- direct computations ----------------------------------------------------------------------------------------

def np_conv_same(x, w):
  """Stride-1 'SAME' convolution (cross-correlation) of x (B, H, W, I) with w (KH, KW, I, O), by shifted sums."""
  kh, kw = w.shape[:2]
  ph, pw = (kh - 1) // 2, (kw - 1) // 2
  xp = np.pad(x, ((0, 0), (ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)))
  h, wd = x.shape[1:3]
  out = np.zeros(x.shape[:3] + (w.shape[-1],))
  for i in range(kh):
    for j in range(kw):
      out += xp[:, i:i + h, j:j + wd, :] @ w[i, j]
  return out


def np_modulated_conv(x, weight, styles, demodulate):
  """Per example: the modulated kernel weight * s (times 1 / sqrt(sum of its squares + 1e-8) per output)."""
  out = []
  for b in range(x.shape[0]):
    wb = weight.astype(np.float64) * styles[b][None, None, :, None]
    if demodulate:
      wb = wb / np.sqrt(np.sum(wb ** 2, axis=(0, 1, 2), keepdims=True) + 1e-8)
    out.append(np_conv_same(x[b:b + 1].astype(np.float64), wb)[0])
  return np.stack(out)


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("fused", [False, True])
def test_modulated_conv_matches_per_example_kernels(demodulate, fused):
  r = np.random.default_rng(0)
  x = r.normal(size=(3, 6, 5, 4)).astype(np.float32)
  weight = r.normal(size=(3, 3, 4, 7)).astype(np.float32)
  styles = r.normal(size=(3, 4)).astype(np.float32) + 1.0
  got = np.asarray(sg.modulated_conv(jnp.asarray(x), jnp.asarray(weight), jnp.asarray(styles),
                                     demodulate=demodulate, fused=fused))
  np.testing.assert_allclose(got, np_modulated_conv(x, weight, styles, demodulate), rtol=2e-4, atol=2e-4)
  if demodulate:
    # demodulated outputs of unit-variance inputs have about unit variance, whatever the styles' scale
    big = np.asarray(sg.modulated_conv(jnp.asarray(r.normal(size=(2, 16, 16, 4)), jnp.float32), jnp.asarray(weight),
                                       jnp.asarray(100.0 * styles[:2]), fused=fused))
    assert 0.5 < big[:, 1:-1, 1:-1].std() < 1.5


def test_equalised_dense_and_conv_scale_their_weights_at_run_time():
  r = np.random.default_rng(1)
  x = r.normal(size=(5, 12)).astype(np.float32)
  for lr_mul in (1.0, 0.01):
    layer = sg.EqualDense(6, bias_init=1.0, lr_multiplier=lr_mul)
    v = layer.init(jax.random.PRNGKey(0), x)
    k, b = np.asarray(v["params"]["kernel"]), np.asarray(v["params"]["bias"])
    np.testing.assert_allclose(b, 1.0 / lr_mul, rtol=1e-6)               # stored / lr_mul, used * lr_mul
    want = x @ (k * lr_mul / math.sqrt(12)) + b * lr_mul
    np.testing.assert_allclose(np.asarray(layer.apply(v, x)), want, rtol=1e-5, atol=1e-5)
  big = sg.EqualDense(256, lr_multiplier=0.01).init(jax.random.PRNGKey(1), np.zeros((1, 256), np.float32))
  assert np.std(np.asarray(big["params"]["kernel"])) == pytest.approx(100.0, rel=0.02)   # N(0, 1) / lr_mul
  xi = r.normal(size=(2, 8, 8, 3)).astype(np.float32)
  conv = sg.EqualConv(5, 3, activation=True)
  v = conv.init(jax.random.PRNGKey(2), xi)
  v = jax.tree.map(lambda a: a + 0.1, v)                               # a non-zero bias
  k, b = np.asarray(v["params"]["kernel"]), np.asarray(v["params"]["bias"])
  pre = np_conv_same(xi, k / math.sqrt(3 * 3 * 3)) + b
  want = np.where(pre > 0, pre, 0.2 * pre) * math.sqrt(2.0)
  np.testing.assert_allclose(np.asarray(conv.apply(v, xi)), want, rtol=1e-4, atol=1e-4)


def test_minibatch_stddev_matches_groups_by_hand():
  r = np.random.default_rng(2)
  x = r.normal(size=(8, 3, 3, 4)).astype(np.float32)
  got = np.asarray(sg.minibatch_stddev(jnp.asarray(x), group_size=4))
  np.testing.assert_array_equal(got[..., :4], x)
  for n in range(8):
    group = [m for m in range(8) if m % 2 == n % 2]                    # B / G = 2 groups, strided
    want = np.mean(np.sqrt(np.var(x[group].astype(np.float64), axis=0) + 1e-8))
    np.testing.assert_allclose(got[n, :, :, 4], want, rtol=1e-5)
  with pytest.raises(ValueError, match="not a multiple of the group size 4"):
    sg.minibatch_stddev(jnp.asarray(x[:6]), group_size=4)


# -- the generator ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
  config = get_config("smoke")
  gan = make_gan(config)
  return gan, gan.init(jax.random.PRNGKey(0))


def _with_w_avg(g_vars, w_avg):
  return {**g_vars, "buffers": {"mapping": {"w_avg": jnp.asarray(w_avg)}}}


def test_w_avg_moves_with_the_training_forward_pass_only(small):
  gan, params = small
  g = params["generator"]
  old = np.random.default_rng(3).normal(size=g["buffers"]["mapping"]["w_avg"].shape).astype(np.float32)
  g = _with_w_avg(g, old)
  z = jax.random.normal(jax.random.PRNGKey(4), (16, gan.latent_dim))
  w = np.asarray(gan.generator.apply(g, z, method="map_latents"))
  _, new = gan.generate(g, z, update_buffers=True, rng=jax.random.PRNGKey(5), train=True)
  mean = w.mean(axis=0)
  np.testing.assert_allclose(np.asarray(new["buffers"]["mapping"]["w_avg"]), mean + 0.995 * (old - mean),
                             rtol=1e-5, atol=1e-6)
  # the discriminator step's and the sampler's forward passes leave it alone (no mutable collection)
  gan.generate(g, z, rng=jax.random.PRNGKey(5), train=True)
  np.testing.assert_array_equal(np.asarray(g["buffers"]["mapping"]["w_avg"]), old)


def test_truncation_in_w(small):
  gan, params = small
  g = params["generator"]
  w_avg = np.random.default_rng(6).normal(size=g["buffers"]["mapping"]["w_avg"].shape).astype(np.float32)
  g = _with_w_avg(g, w_avg)
  z = jax.random.normal(jax.random.PRNGKey(7), (5, gan.latent_dim))
  w1 = np.asarray(gan.generator.apply(g, z, method="map_latents"))
  w0 = np.asarray(gan.generator.apply(g, z, 0.0, method="map_latents"))
  np.testing.assert_allclose(w0, np.broadcast_to(w_avg, w0.shape), rtol=1e-6, atol=1e-6)
  w_half = np.asarray(gan.generator.apply(g, z, 0.5, method="map_latents"))
  np.testing.assert_allclose(w_half, w_avg + 0.5 * (w1 - w_avg), rtol=1e-5, atol=1e-5)
  # through sample(): psi = 0 gives one image for every latent once the noise is off; psi = 1 is the plain sample
  quiet = jax.tree_util.tree_map_with_path(
      lambda p, a: jnp.zeros_like(a) if "noise_strength" in jax.tree_util.keystr(p) else a, g)
  x0 = np.asarray(gan.sample({"generator": quiet}, jax.random.PRNGKey(8), 5, truncation_psi=0.0))
  assert np.abs(x0 - x0[:1]).max() < 1e-5
  xs = np.asarray(gan.sample({"generator": quiet}, jax.random.PRNGKey(8), 5))
  assert np.abs(xs - xs[:1]).max() > 1e-2
  rng = jax.random.PRNGKey(9)
  x1 = np.asarray(gan.sample({"generator": g}, rng, 5, truncation_psi=1.0))
  direct = gan.generator.apply(g, gan.generator.apply(g, gan.latents(rng, 5), method="map_latents"),
                               rngs={"noise": jax.random.fold_in(rng, 1)}, method="synthesize")
  np.testing.assert_allclose(x1, np.asarray(direct), rtol=1e-5, atol=1e-5)


def test_style_mixing_uses_w2_after_the_crossover():
  w1, w2 = jnp.ones((200, 3)), -jnp.ones((200, 3))
  ws, cut = sg.mix_styles(w1, w2, jax.random.PRNGKey(0), 6, 0.9)
  ws, cut = np.asarray(ws), np.asarray(cut)
  for b in range(200):
    np.testing.assert_array_equal(ws[b, :cut[b]], 1.0)
    np.testing.assert_array_equal(ws[b, cut[b]:], -1.0)
  mixed = cut < 6
  assert 0.8 < mixed.mean() < 0.98 and set(cut[mixed]) == {1, 2, 3, 4, 5}
  assert np.all(np.asarray(sg.mix_styles(w1, w2, jax.random.PRNGKey(1), 6, 0.0)[1]) == 6)


def test_the_generator_trains_on_mixed_styles(small):
  """In training (mixing_prob 0.9), the synthesis network gets ws with the first latent's w before each
  example's crossover and one other w after it; the image is exactly synthesize(ws) with the same noise."""
  gan, params = small
  g = params["generator"]
  z = jax.random.normal(jax.random.PRNGKey(10), (32, gan.latent_dim))
  rng = jax.random.PRNGKey(11)
  x, inter = gan.generator.apply(g, z, train=True, rngs={"noise": rng}, mutable=["intermediates"])
  ws = np.asarray(inter["intermediates"]["ws"][0])
  w1 = np.asarray(gan.generator.apply(g, z, method="map_latents"))
  num_ws = ws.shape[1]
  mixed = 0
  for b in range(32):
    same = np.all(np.isclose(ws[b], w1[b], atol=1e-6), axis=-1)
    cut = int(np.argmin(same)) if not same.all() else num_ws
    assert same[:cut].all() and not same[cut:].any()
    if cut < num_ws:
      mixed += 1
      assert cut >= 1 and np.allclose(ws[b, cut:], ws[b, cut])        # one w2 after the crossover
  assert mixed >= 20
  direct = gan.generator.apply(g, jnp.asarray(ws), True, rngs={"noise": rng}, method="synthesize")
  np.testing.assert_allclose(np.asarray(x), np.asarray(direct), rtol=1e-5, atol=1e-5)


def test_the_validator_names_the_field():
  c = get_config("smoke")
  c.model.g_channels = (8, 8, 8)
  with pytest.raises(ValueError, match=r"model.g_channels=\(8, 8, 8\): give 2 positive widths"):
    validate_gan_config(c)
  c = get_config("smoke")
  with pytest.raises(ValueError, match=r"gan.truncation_psi=-0.5 must be a finite number >= 0"):
    registry.apply_sample_options(c, {"truncation_psi": -0.5})
  assert registry.apply_sample_options(c, {"truncation_psi": 0.5}).gan.truncation_psi == 0.5
  from experiments.dcgan_cifar import get_config as dcgan_config
  with pytest.raises(ValueError, match="gan.truncation_psi=0.7: truncation in W needs model.kind='stylegan'"):
    registry.apply_sample_options(dcgan_config("smoke"), {"truncation_psi": 0.7})
  c = get_config("smoke")
  c.model.mbstd_group = 3
  with pytest.raises(ValueError, match="model.mbstd_group=3"):
    validate_gan_config(c)


# -- one smoke run: the mapping group's learning rate, the buffer through checkpoints, resume ------------------

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  from jaxgen.train.run import run
  config = get_config("smoke")
  config.update(evals=(), sample_every=0, tensorboard=False)
  workdir = tmp_path_factory.mktemp("stylegan") / "straight"
  state = run(config, str(workdir), experiment="experiments.stylegan")
  return config, workdir, state


def test_the_mapping_network_has_its_own_learning_rate(smoke_run):
  _, workdir, _ = smoke_run
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  rows = [r for r in rows if "train/learning_rate/mapping" in r]
  assert rows
  for r in rows:
    assert r["train/learning_rate/mapping"] == pytest.approx(MAPPING_LR_MULTIPLIER * r["train/learning_rate/generator"])
    assert r["train/learning_rate/generator"] > 0


def test_w_avg_is_trained_and_restored_exactly(smoke_run):
  from jaxgen.train.run import load_run
  config, workdir, state = smoke_run
  w_avg = np.asarray(state.params["generator"]["buffers"]["mapping"]["w_avg"])
  assert np.all(np.isfinite(w_avg)) and np.abs(w_avg).max() > 0          # initialised at 0, moved by training
  run = load_run(str(workdir))
  assert run.step == config.num_train_steps
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(run.state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(np.asarray(run.params["generator"]["buffers"]["mapping"]["w_avg"]), w_avg)


def test_the_smoke_run_resumes_on_the_same_trajectory(smoke_run, tmp_path):
  from jaxgen.train.run import run
  config, workdir, straight = smoke_run
  shutil.copytree(workdir, tmp_path / "resumed")
  shutil.rmtree(tmp_path / "resumed" / "checkpoints" / str(config.num_train_steps))
  resumed = run(config, str(tmp_path / "resumed"), experiment="experiments.stylegan")
  assert int(resumed.step) == config.num_train_steps
  for a, b in zip(jax.tree.leaves((straight.params, straight.ema_params, straight.opt_state)),
                  jax.tree.leaves((resumed.params, resumed.ema_params, resumed.opt_state))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
