"""The first stage of latent diffusion as a family (jaxgen.ldm.autoencoder) and its use by the second stage: its
config validation names bad values, the latent scale it stores is the one recomputed from its run and the one
a DDPM with codec.scale='auto' diffuses with (exactly), a missing or stale scale is refused in one line, and the
second stage (experiments/ldm.py's smoke preset, resumed once) leaves the frozen encoder and decoder
bit-identical, decodes its samples, and trains the same loss on cached latents as on latents encoded in the step. One smoke run of
the first stage (2 steps, the 'latent_scale' evaluation only) is shared by the tests of this module."""
import json
import os

import jax
import numpy as np
import pytest

from experiments import ldm_autoencoder
from jaxgen import registry
from jaxgen.ldm import scaling
from jaxgen.train import run as run_mod


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("ldm_ae"))
  c = ldm_autoencoder.get_config("smoke")
  c.update(evals=("latent_scale",), tensorboard=False, num_train_steps=2, checkpoint_every=2)
  run_mod.run(c, workdir, experiment="experiments.ldm_autoencoder")
  return workdir


@pytest.mark.parametrize("field, value, match", [
    ("ldm.reconstruction", "l3", r"ldm.reconstruction='l3'; choose one of: l1, l2"),
    ("ldm.kl_weight", -1e-6, r"ldm.kl_weight=-1e-06 must be a finite number >= 0"),
    ("model.block_out_channels", (4, 5), r"model.block_out_channels=\(4, 5\): 5 is not divisible by "
                                         r"model.norm_num_groups=2"),
    ("model.block_out_channels", (4, 4, 4, 4, 4), r"downsample by f=16, which does not divide digits's 8x8"),
    ("model.latent_channels", 0, r"model.latent_channels=0 must be an int >= 1"),
    ("eval.reconstruction_examples", 1, r"eval.reconstruction_examples=1 must be an integer >= 2"),
])
def test_the_config_is_validated(field, value, match):
  c = ldm_autoencoder.get_config("smoke")
  section, leaf = field.split(".")
  c[section][leaf] = value
  with pytest.raises(ValueError, match=match):
    registry.validate_config(c)


def _latent_ddpm(workdir, scale):
  from experiments.ddpm_cifar import get_config
  c = get_config("smoke")
  c.codec = dict(kind="frozen_autoencoder", workdir=workdir, scale=scale)
  c.model.update(attn_resolutions=(), num_classes=0)
  c.update(num_train_steps=2, evals=(), tensorboard=False, sample_every=0, checkpoint_every=2)
  return c


def test_the_latent_scale_is_stored_and_restored_exactly(stage1, tmp_path, capsys):
  record = json.load(open(os.path.join(stage1, scaling.SCALE_FILE)))
  source = run_mod.load_run(stage1)
  assert record["step"] == source.step == 2 and record["num_examples"] == 64
  capsys.readouterr()
  again = scaling.compute_latent_scale(source.config, source.family, source.params, 64)
  err = capsys.readouterr().err                     # its progress, on stderr
  assert "latent scale: encoding training images 0/64 (0%)" in err and "training images 64/64 (100%)" in err, err
  assert again["scale"] == record["scale"] and again["std"] == record["std"]
  assert scaling.read_latent_scale(stage1) == record["scale"]

  # a DDPM on the latents with codec.scale='auto' diffuses with exactly that scale, on latents (4, 4, 2)
  from jaxgen.diffusion.build import event_shape, make_codec
  config = _latent_ddpm(stage1, "auto")
  registry.validate_config(config)
  assert event_shape(config) == (4, 4, 2)
  codec, parts = make_codec(config)
  assert codec.scale == record["scale"] and parts["autoencoder"].workdir == stage1

  # refused in one line: a bad scale name, a missing file, a file of another step than the latest checkpoint
  with pytest.raises(ValueError, match=r"codec.scale='mean'; give a number > 0 or 'auto'"):
    registry.validate_config(_latent_ddpm(stage1, "mean"))
  copy = str(tmp_path / "copy")
  import shutil
  shutil.copytree(stage1, copy)
  stale = dict(record, step=1)
  scaling.write_latent_scale(copy, stale)
  with pytest.raises(ValueError, match=r"was computed at step 1, but the run's latest checkpoint is step 2"):
    registry.validate_config(_latent_ddpm(copy, "auto"))
  os.remove(os.path.join(copy, scaling.SCALE_FILE))
  with pytest.raises(ValueError, match=r"codec.scale='auto' but .*latent_scale.json does not exist"):
    registry.validate_config(_latent_ddpm(copy, "auto"))
  # a first-stage workdir of a family that is no autoencoder
  path = os.path.join(copy, "config.json")
  record = json.load(open(path))
  record["config"]["family"] = "gan"
  json.dump(record, open(path, "w"))
  with pytest.raises(ValueError, match=r"holds a 'gan' run; the frozen autoencoder must be one of: vae, "
                                       r"ldm_autoencoder"):
    registry.validate_config(_latent_ddpm(copy, 1.0))


def test_the_ldm_smoke_preset_trains_resumes_and_leaves_the_first_stage_bit_identical(stage1, tmp_path):
  """experiments/ldm.py:smoke through the trainer: 2 steps, then resumed to 4; the frozen encoder and decoder
  equal the first stage's run leaf by leaf, and samples are decoded to pixels."""
  from experiments import ldm
  workdir = str(tmp_path / "ldm")
  c = ldm.get_config("smoke")
  c.codec.update(workdir=stage1, cache=True)          # trains on the cached latents (jaxgen.ldm.cache)
  c.update(num_train_steps=2, checkpoint_every=2, evals=(), tensorboard=False)
  state = run_mod.run(c, workdir, experiment="experiments.ldm")
  assert int(state.step) == 2 and "autoencoder" not in state.params
  c.num_train_steps = 4
  state = run_mod.run(c, workdir, experiment="experiments.ldm")
  assert int(state.step) == 4
  assert os.path.isfile(os.path.join(workdir, "samples", "step_4.png"))
  source = run_mod.load_run(stage1)
  rebuilt = run_mod.load_run(workdir)
  a, b = jax.tree.leaves(rebuilt.params["autoencoder"]), jax.tree.leaves(source.params)
  assert len(a) == len(b) and {"encoder", "decoder"} <= set(rebuilt.params["autoencoder"])
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  samples = np.asarray(rebuilt.family.sample(rebuilt.params, jax.random.PRNGKey(0), 2))
  assert samples.shape == (2, 8, 8, 1) and samples.min() >= -1 and samples.max() <= 1

  # latents cached once (batch['latent'], jaxgen.diffusion.codecs) train exactly the loss of latents encoded
  # in the step
  fam, params = rebuilt.family, rebuilt.params
  from jaxgen.data import load_split
  images = load_split(rebuilt.config, "train")["image"][:8]
  latents = jax.jit(fam.codec.autoencoder.encode_latents)(params["autoencoder"], images)
  loss = jax.jit(lambda b: fam.loss(params, b, jax.random.PRNGKey(3))[0])
  np.testing.assert_allclose(loss({"image": images}), loss({"latent": latents}), rtol=1e-6)
  # the cached pipeline's batches: the same examples in the same order, their images replaced by their latents
  from jaxgen.data import train_data_fn
  from jaxgen.ldm.cache import ddpm_data_fn
  cached, plain = next(ddpm_data_fn(c)(3)), next(train_data_fn(c)(3))
  assert "image" not in cached and set(cached) - {"latent"} == set(plain) - {"image"}
  want = np.asarray(jax.jit(fam.codec.autoencoder.encode_latents)(params["autoencoder"], plain["image"]))
  np.testing.assert_allclose(cached["latent"], want, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match=r"codec.cache=True needs data.random_flip=False"):
    c.data.random_flip = True
    registry.validate_config(c)
