"""jaxgen's KL autoencoder is diffusers' AutoencoderKL: a tiny diffusers model filled with seeded weights
(tests/fixtures/seeded.py, regenerated here with numpy and written as safetensors with numpy; no weights committed)
gives, mapped by jaxgen.ldm.convert_diffusers, the posterior, decodings and reconstructions that
tests/fixtures/make_autoencoder_kl_fixture.py saved from diffusers in float64. The Stable Diffusion VAE's full-size
key set maps without weights, what cannot be mapped is refused naming it, and kl_divergence is the KL of the
posterior to N(0, I) computed independently by quadrature and Monte Carlo."""
import json
import os
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
sys.path.insert(0, FIXTURES)
from seeded import seeded_state_dict  # noqa: E402

from safetensors.numpy import save_file  # noqa: E402
from jaxgen.ldm import convert_diffusers as cd  # noqa: E402
from jaxgen.nn.autoencoder_kl import AutoencoderKL, kl_divergence, sample_posterior  # noqa: E402

TINY = np.load(os.path.join(FIXTURES, "autoencoder_kl_fixture.npz"))
TINY_CONFIG = json.loads(str(TINY["config"]))
TINY_SHAPES = {k: tuple(s) for k, s in json.loads(str(TINY["keys"]))}
SD = json.load(open(os.path.join(FIXTURES, "autoencoder_kl_sd_keys.json")))
SD_SHAPES = {k: tuple(s) for k, s in SD["keys"]}


def inputs():
  """make_autoencoder_kl_fixture.input_images / input_latents: the same numpy calls."""
  x = (np.random.default_rng(1).random((2, 16, 16, 3)) * 2.0 - 1.0).astype(np.float32)
  z = np.random.default_rng(2).standard_normal((2, 8, 8, 4)).astype(np.float32)
  assert np.isclose(x.astype(np.float64).sum(), float(TINY["input_sum"]), rtol=0, atol=1e-6), "numpy's stream changed"
  assert np.isclose(z.astype(np.float64).sum(), float(TINY["latent_sum"]), rtol=0, atol=1e-6), "numpy's stream changed"
  return x, z


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """The tiny model's weights written as safetensors, read back, mapped, and run once (one jit)."""
  path = str(tmp_path_factory.mktemp("vae") / cd.WEIGHTS_FILE)
  save_file(seeded_state_dict(TINY_SHAPES, int(TINY["seed"])), path, metadata={"format": "pt"})
  module = cd.module_from_diffusers_config(TINY_CONFIG)
  params = cd.params_from_diffusers(cd.read_weights(path), TINY_CONFIG)
  x, z = inputs()
  rng = jax.random.PRNGKey(3)

  @jax.jit
  def run(params, x, z, rng):
    v = {"params": params}
    mean, logvar = module.apply(v, x, method=AutoencoderKL.encode)
    decoded = module.apply(v, z, method=AutoencoderKL.decode)
    recon, mean2, logvar2 = module.apply(v, x)
    sampled, _, _ = module.apply(v, x, rng)
    by_hand = module.apply(v, sample_posterior(rng, mean, logvar), method=AutoencoderKL.decode)
    return dict(mean=mean, logvar=logvar, decoded=decoded, reconstruction=recon, mean2=mean2, logvar2=logvar2,
                sampled=sampled, by_hand=by_hand)

  return module, params, jax.tree.map(np.asarray, run(params, x, z, rng))


@pytest.mark.parametrize("name", ["mean", "logvar", "decoded", "reconstruction"])
def test_tiny_model_reproduces_diffusers(tiny, name):
  _, _, out = tiny
  ref = TINY[name]
  assert ref.dtype == np.float64 and np.isfinite(ref).all() and np.abs(ref).mean() > 0.1
  assert out[name].shape == ref.shape
  err = np.abs(out[name] - ref).max()
  scale = np.abs(ref).max()
  print(f"{name}: max abs error vs diffusers (float64) {err:.2e}, relative to max |ref| {err / scale:.2e}")
  assert err <= 1e-5 * scale, (err, scale)


def test_call_samples_the_posterior(tiny):
  _, _, out = tiny
  np.testing.assert_array_equal(out["mean2"], out["mean"])
  np.testing.assert_array_equal(out["logvar2"], out["logvar"])
  np.testing.assert_allclose(out["sampled"], out["by_hand"], rtol=0, atol=1e-6)
  assert np.abs(out["sampled"] - out["reconstruction"]).max() > 1e-3        # a sample, not the mean


def test_module_fields_from_the_config(tiny):
  module, params, _ = tiny
  assert (module.block_out_channels, module.layers_per_block, module.latent_channels, module.norm_num_groups,
          module.norm_eps, module.downsample_factor) == ((8, 16), 1, 4, 4, 1e-6, 2)
  assert sum(int(np.prod(v.shape)) for v in jax.tree.leaves(params)) == sum(int(np.prod(s))
                                                                             for s in TINY_SHAPES.values())


def test_logvar_is_clipped():
  """A quant_conv that outputs +-100 everywhere: the mean half passes, the log-variance half is clipped to
  [-30, 20] (diffusers' DiagonalGaussianDistribution)."""
  module = AutoencoderKL(block_out_channels=(4,), norm_num_groups=2, latent_channels=4)
  x = jnp.zeros((1, 2, 2, 3))
  shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x)["params"])
  params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

  @jax.jit
  def encode(bias):
    p = dict(params, quant_conv={"kernel": jnp.zeros((8, 8)), "bias": bias})
    return module.apply({"params": p}, x, method=AutoencoderKL.encode)

  for sign, want in ((1.0, 20.0), (-1.0, -30.0)):
    mean, logvar = encode(jnp.full((8,), 100.0 * sign))
    assert np.all(np.asarray(mean) == 100.0 * sign) and np.all(np.asarray(logvar) == want)


@pytest.mark.parametrize("channels,factor", [((8, 16, 16), 4), ((8, 8, 16, 16), 8)])
def test_shapes_for_f4_and_f8(channels, factor):
  module = AutoencoderKL(block_out_channels=channels, layers_per_block=2, latent_channels=3, norm_num_groups=4)
  assert module.downsample_factor == factor
  x = jax.ShapeDtypeStruct((2, 32, 24, 3), jnp.float32)
  params = jax.eval_shape(lambda x: module.init(jax.random.PRNGKey(0), x)["params"], x)
  recon, mean, logvar = jax.eval_shape(lambda p, x: module.apply({"params": p}, x, jax.random.PRNGKey(1)), params, x)
  assert mean.shape == logvar.shape == (2, 32 // factor, 24 // factor, 3)
  assert recon.shape == (2, 32, 24, 3)


def test_sd_vae_keys_map_without_weights():
  """The Stable Diffusion VAE's architecture (f = 8, 83.7M parameters): every tensor maps, the count agrees."""
  shapes = cd.converted_shapes(SD_SHAPES, SD["config"])
  assert sum(int(np.prod(s)) for s in shapes.values()) == SD["num_params"] == 83_653_863
  assert cd.module_from_diffusers_config(SD["config"]).downsample_factor == 8
  assert shapes[("decoder", "up_0_block_2", "conv1", "kernel")] == (3, 3, 512, 512)    # up_blocks.0: lowest res
  assert shapes[("decoder", "up_3_block_0", "nin_shortcut", "kernel")] == (256, 128)
  assert shapes[("encoder", "mid", "mid_attn_1", "proj_out", "kernel")] == (512, 512)
  assert shapes[("quant_conv", "kernel")] == (8, 8)
  # Older diffusers checkpoints' attention names (query, key, value, proj_attn) map the same.
  old = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
  renamed = {next((k.replace(f".{a}.", f".{b}.") for a, b in old.items() if f".{a}." in k), k): s
             for k, s in SD_SHAPES.items()}
  assert renamed != SD_SHAPES and cd.converted_shapes(renamed, SD["config"]) == shapes
  # Without the 1x1 convs around the latent (use_quant_conv / use_post_quant_conv false).
  config = dict(SD["config"], use_quant_conv=False, use_post_quant_conv=False)
  bare = cd.converted_shapes({k: s for k, s in SD_SHAPES.items() if "quant_conv" not in k}, config)
  assert set(shapes) - set(bare) == {("quant_conv", "kernel"), ("quant_conv", "bias"), ("post_quant_conv", "kernel"),
                                     ("post_quant_conv", "bias")}


def test_state_dict_that_does_not_fit_is_named():
  shapes = dict(SD_SHAPES)
  shapes["encoder.mid_block.attentions.0.query.weight"] = (512, 512)          # twice: to_q and query
  shapes["loss.discriminator.weight"] = (1, 3)                                # no place in the autoencoder
  shapes["decoder.up_blocks.0.resnets.3.conv1.weight"] = (512, 512, 3, 3)     # a resnet it does not have
  del shapes["decoder.conv_out.bias"]
  shapes["encoder.mid_block.resnets.0.conv1.weight"] = (512, 512, 1, 1)
  with pytest.raises(ValueError) as info:
    cd.converted_shapes(shapes, SD["config"])
  message = str(info.value)
  assert "1 unknown keys: loss.discriminator.weight" in message
  assert ("1 keys used twice: encoder.mid_block.attentions.0.query.weight and "
          "encoder.mid_block.attentions.0.to_q.weight") in message
  assert "1 missing parameters: decoder/conv_out/bias" in message
  assert "1 unexpected keys: decoder.up_blocks.0.resnets.3.conv1.weight (-> decoder/up_0_block_3/conv1/kernel)" \
      in message
  assert ("encoder.mid_block.resnets.0.conv1.weight (512, 512, 1, 1) -> encoder/mid/mid_block_1/conv1/kernel needs "
          "(3, 3, 512, 512)") in message


@pytest.mark.parametrize("change,match", [
    (dict(down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D"]),
     r"down_block_types=\['DownEncoderBlock2D', 'AttnDownEncoderBlock2D'\].*allowed: \['DownEncoderBlock2D'\] \* 2"),
    (dict(up_block_types=["UpDecoderBlock2D"]), r"up_block_types=\['UpDecoderBlock2D'\].*\* 2"),
    (dict(act_fn="gelu"), r"act_fn='gelu'.*allowed: 'silu'"),
    (dict(norm_num_groups=3), r"norm_num_groups=3.*allowed: a divisor of every block_out_channels entry \(\[8, 16\]"),
    (dict(block_out_channels=[]), r"block_out_channels=\[\].*non-empty list"),
    (dict(layers_per_block=0), r"layers_per_block=0.*allowed: an integer >= 1"),
    (dict(latent_channels=2.5), r"latent_channels=2.5.*allowed: an integer >= 1"),
    (dict(use_quant_conv="yes"), r"use_quant_conv='yes'.*allowed: true or false"),
    (dict(norm_type="spatial"), r"norm_type='spatial'.*allowed fields:"),
    (dict(_class_name="VQModel"), r"_class_name='VQModel'.*allowed: 'AutoencoderKL'"),
])
def test_configs_that_cannot_be_mapped_are_refused(change, match):
  with pytest.raises(ValueError, match=match):
    cd.module_from_diffusers_config(dict(TINY_CONFIG, **change))


def test_config_defaults_and_ignored_fields():
  kw = cd.module_kwargs({"_class_name": "AutoencoderKL", "_diffusers_version": "0.4.2", "scaling_factor": 0.13025})
  assert kw == dict(in_channels=3, out_channels=3, block_out_channels=(64,), layers_per_block=1, latent_channels=4,
                    norm_num_groups=32, norm_eps=1e-6, mid_block_add_attention=True, use_quant_conv=True,
                    use_post_quant_conv=True)


def test_pickle_is_refused(tmp_path):
  with pytest.raises(ValueError, match="PyTorch pickle"):
    cd.read_weights(str(tmp_path / "diffusion_pytorch_model.bin"))


def _kl_by_quadrature(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
  """Per example, the sum over dimensions of integral q log(q / p) dz, q = N(m, s^2), p = N(0, 1), on a fine grid
  (float64; no closed form used)."""
  std = np.exp(0.5 * logvar)[..., None]
  grid = np.linspace(-1.0, 1.0, 20001) * 12.0
  z = mean[..., None] + std * grid                       # +-12 standard deviations around each mean
  log_q = -0.5 * grid ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
  log_p = -0.5 * z ** 2 - 0.5 * np.log(2 * np.pi)
  per_dim = np.trapezoid(np.exp(log_q) * (log_q - log_p), z, axis=-1)
  return per_dim.reshape(mean.shape[0], -1).sum(-1)


def test_kl_divergence_against_quadrature_and_monte_carlo():
  rng = np.random.default_rng(5)
  mean = rng.normal(size=(3, 2, 2, 2)) * 1.5
  logvar = rng.uniform(-3.0, 2.0, size=(3, 2, 2, 2))
  kl = np.asarray(kl_divergence(jnp.asarray(mean, jnp.float32), jnp.asarray(logvar, jnp.float32)), np.float64)
  assert kl.shape == (3,)
  np.testing.assert_allclose(kl, _kl_by_quadrature(mean, logvar), rtol=1e-5)
  # Monte Carlo: E_q[log q(z) - log p(z)] over 200k draws per example.
  eps = rng.standard_normal((200_000,) + mean.shape[1:])
  per_example = []
  for b in range(mean.shape[0]):
    z = mean[b] + np.exp(0.5 * logvar[b]) * eps
    log_ratio = (-0.5 * eps ** 2 - 0.5 * logvar[b] + 0.5 * z ** 2).reshape(len(eps), -1).sum(-1)
    per_example.append((log_ratio.mean(), log_ratio.std() / np.sqrt(len(eps))))
  for value, (estimate, stderr) in zip(kl, per_example):
    assert abs(value - estimate) < 5 * stderr + 1e-6, (value, estimate, stderr)
  # The posterior equal to the prior has no divergence.
  assert np.all(np.asarray(kl_divergence(jnp.zeros((2, 3, 3, 4)), jnp.zeros((2, 3, 3, 4)))) == 0.0)


# -- `python -m jaxgen.ldm.convert_diffusers SRC DST`: a first-stage run directory ------------------------------

DATA = "shapes_tiny"      # 32x32x3, offline: fits the tiny model (3 channels in and out, f = 2)


def _diffusers_dir(root, config=None, weights=True, pickle=False):
  """A diffusers AutoencoderKL directory: config.json and the seeded weights as safetensors (or a pickle's name)."""
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, cd.CONFIG_FILE), "w") as f:
    json.dump(TINY_CONFIG if config is None else config, f)
  if weights:
    save_file(seeded_state_dict(TINY_SHAPES, int(TINY["seed"])), os.path.join(root, cd.WEIGHTS_FILE),
                      metadata={"format": "pt"})
  if pickle:
    open(os.path.join(root, cd.PICKLE_FILE), "wb").close()
  return str(root)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """The tiny model converted from a pipeline's layout (the model in vae/) into a run on shapes_tiny."""
  root = tmp_path_factory.mktemp("convert")
  _diffusers_dir(root / "pipeline" / "vae")
  dst = str(root / "run")
  import contextlib
  import io
  err = io.StringIO()
  with contextlib.redirect_stderr(err):
    record = cd.convert(str(root / "pipeline"), dst, data=DATA)
  lines = err.getvalue().splitlines()       # a progress line as each stage starts, on stderr
  assert [line.split(" | ")[0] for line in lines] == ["convert 1/3", "convert 2/3", "convert 3/3"], lines
  assert "| reading " in lines[0] and "| writing the step-0 checkpoint to " in lines[2], lines
  return dst, record


def test_converted_run_reproduces_diffusers(converted):
  from jaxgen.train.run import load_run
  dst, record = converted
  run = load_run(dst)
  assert run.step == 0 and run.config.family == "ldm_autoencoder" and run.config.data.name == DATA
  assert run.experiment == "experiments.ldm_autoencoder" and run.preset == "paper"
  assert tuple(run.config.model.block_out_channels) == (8, 16) and run.config.model.norm_num_groups == 4
  assert record["num_params"] == sum(int(np.prod(s)) for s in TINY_SHAPES.values())
  assert record["weights"].endswith(os.path.join("vae", cd.WEIGHTS_FILE))
  json_record = json.load(open(os.path.join(dst, "config.json")))
  assert json_record["converted_from"]["diffusers_config"] == TINY_CONFIG
  for a, b in zip(jax.tree.leaves(run.state.params), jax.tree.leaves(run.state.ema_params)):   # params = EMA
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  x, z = inputs()
  fam, params = run.family, run.params
  mean, logvar = jax.jit(fam.posterior)(params, x)
  out = dict(mean=mean, logvar=logvar, decoded=jax.jit(fam.decode)(params, z))
  # encode_latents / decode_latents (the codec's API): the posterior mean of uint8 images, the decoder's images
  images = np.round((x + 1.0) * 127.5).astype(np.uint8)
  np.testing.assert_allclose(np.asarray(jax.jit(fam.encode_latents)(params, images)),
                             np.asarray(jax.jit(fam.posterior)(params, images / 127.5 - 1.0)[0]),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(jax.jit(fam.decode_latents)(params, z)), np.asarray(out["decoded"]),
                             rtol=1e-5, atol=1e-5)
  for name, value in out.items():
    ref = TINY[name]
    err = np.abs(np.asarray(value) - ref).max()
    assert err <= 1e-5 * np.abs(ref).max(), (name, err)


def test_converted_run_is_a_first_stage_for_a_ddpm(converted):
  """latent_scale.json holds the config's scaling_factor at step 0: a DDPM with codec.scale='auto' on the same
  data set validates and diffuses latents (16, 16, 4) times exactly that factor."""
  from experiments.ddpm_cifar import get_config
  from jaxgen import registry
  from jaxgen.diffusion.build import event_shape, make_codec
  from jaxgen.ldm.scaling import SCALE_FILE, read_latent_scale
  dst, _ = converted
  assert read_latent_scale(dst) == TINY_CONFIG["scaling_factor"]
  stored = json.load(open(os.path.join(dst, SCALE_FILE)))
  assert stored["step"] == 0 and stored["num_examples"] == 0 and stored["std"] == 1.0 / stored["scale"]
  assert "diffusers config" in stored["source"]
  c = get_config("smoke")
  c.data.name = DATA
  c.codec = dict(kind="frozen_autoencoder", workdir=dst, scale="auto")
  c.model.update(attn_resolutions=(), num_classes=0)
  c.update(evals=(), tensorboard=False, sample_every=0)
  registry.validate_config(c)
  assert event_shape(c) == (16, 16, 4)
  codec, _ = make_codec(c)
  assert codec.scale == TINY_CONFIG["scaling_factor"]
  # the factor is the config's (diffusers' default when left out)
  assert cd.scaling_factor({"scaling_factor": 0.13025}) == 0.13025 and cd.scaling_factor({}) == 0.18215


def test_converter_refusals(converted, tmp_path, capsys):
  dst, _ = converted
  src = _diffusers_dir(tmp_path / "vae")
  with pytest.raises(FileExistsError, match=r"already holds a run \(config.json, checkpoints\)"):
    cd.convert(src, dst, data=DATA)
  with pytest.raises(FileNotFoundError, match=r"diffusion_pytorch_model.safetensors does not exist: the model's "
                                              r"weights are needed"):
    cd.convert(_diffusers_dir(tmp_path / "no_weights", weights=False), str(tmp_path / "a"), data=DATA)
  with pytest.raises(ValueError, match=r"diffusion_pytorch_model.bin is a PyTorch pickle, which jaxgen does not read"):
    cd.convert(_diffusers_dir(tmp_path / "pickle", weights=False, pickle=True), str(tmp_path / "b"), data=DATA)
  from jaxgen.data.specs import DATASETS, dataset_names
  rgb = [n for n in dataset_names("image") if DATASETS[n].image_shape[-1] == 3]
  assert {"cifar10", "shapes"} <= set(rgb) and "digits" not in rgb
  with pytest.raises(ValueError, match=r"config.json: in_channels=3 but digits images have 1 channels.*"
                                       r"3-channel images: " + re.escape(", ".join(rgb))):
    cd.convert(src, str(tmp_path / "c"), data="digits")
  with pytest.raises(ValueError, match=r"scaling_factor=0.0 cannot be mapped.*a finite number > 0"):
    cd.run_config(dict(TINY_CONFIG, scaling_factor=0.0), DATA)
  # without the 1x1 convs around the latent: the family's config says so
  bare = cd.run_config(dict(TINY_CONFIG, use_quant_conv=False, use_post_quant_conv=False), DATA)
  assert bare.model.use_quant_conv is False and bare.model.use_post_quant_conv is False
  assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "c")
  # the command line: a data set that is not an image data set of jaxgen.data.specs.DATASETS, in one line
  assert cd.main(["--data=mnist", src, str(tmp_path / "d")]) == 2
  err = capsys.readouterr().err
  assert err == ("error: --data='mnist' is not an image data set of jaxgen.data.specs.DATASETS; choose one of: "
                 f"{', '.join(dataset_names('image'))}\n")
  assert dataset_names("image")[:3] == ("cifar10", "digits", "shapes")
  assert not os.path.exists(tmp_path / "d")
