"""GANs on the shared trainer: a short seeded MLP GAN covers the ring of 8 Gaussians; GAN and VAE runs resumed
from a checkpoint land on the same trajectory as uninterrupted runs."""
import jax
import numpy as np

from experiments.dcgan_cifar import get_config as dcgan_config
from experiments.gan_toy2d import get_config as toy_config
from experiments.vae_digits import get_config as vae_config
from jaxgen.data.builders.digits import digits_split_arrays
from jaxgen.data.toy2d import RING_STD, ring_centers
from jaxgen.eval.mode_coverage import mode_coverage
from jaxgen.gan.build import make_gan, toy2d_data_fn
from jaxgen.train import parallel, trainer
from jaxgen.vae.build import make_vae


def test_short_seeded_gan_covers_at_least_7_of_8_modes():
  config = toy_config("quick")
  gan = make_gan(config)
  mesh = parallel.make_data_mesh()
  data = toy2d_data_fn(config)(0)
  batch = parallel.global_batch(next(data), mesh)
  state = trainer.create_train_state(gan, config, mesh, batch)
  step = trainer.make_train_step(gan, mesh)
  for _ in range(1500):
    state, metrics = step(state, batch)
    batch = parallel.global_batch(next(data), mesh)
  x = np.asarray(jax.jit(lambda p: gan.sample(p, jax.random.PRNGKey(1), 10_000))(state.ema_params))
  cov = mode_coverage(x, ring_centers(), RING_STD)
  assert cov["modes_covered"] >= 7, cov
  assert cov["high_quality_fraction"] > 0.5, cov
  assert np.isfinite(float(metrics["g_loss"]))


def _digits_data_fn(config):
  images, labels = digits_split_arrays("train")

  def data_fn(start_step):
    step = start_step
    while True:
      idx = np.random.default_rng([config.seed, step]).choice(len(images), config.batch_size, replace=False)
      yield {"image": images[idx], "label": labels[idx].astype(np.int32)}
      step += 1
  return data_fn


def _check_resume(tmp_path, family_fn, config, steps=4):
  config.tensorboard = False
  config.sample_every = 0
  config.checkpoint_every = 100
  config.num_train_steps = steps
  straight = trainer.train(family_fn(config), config, str(tmp_path / "straight"), _digits_data_fn(config))
  workdir = str(tmp_path / "resumed")
  config.num_train_steps = steps // 2                 # stop half way (a checkpoint is saved at the end) ...
  trainer.train(family_fn(config), config, workdir, _digits_data_fn(config))
  config.num_train_steps = steps                      # ... and rerun the full command on the same workdir
  resumed = trainer.train(family_fn(config), config, workdir, _digits_data_fn(config))
  assert int(resumed.step) == steps
  a = jax.tree.leaves((straight.params, straight.ema_params, straight.opt_state))
  b = jax.tree.leaves((resumed.params, resumed.ema_params, resumed.opt_state))
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
  return straight


def test_conditional_spectral_dcgan_resumes_on_the_same_trajectory(tmp_path):
  config = dcgan_config("smoke")
  config.model.update(num_classes=10, d_norm="spectral")
  state = _check_resume(tmp_path, make_gan, config)
  assert set(state.opt_state) == {"generator", "discriminator"}        # both players' Adam states, checkpointed
  assert "spectral" in state.params["discriminator"]


def test_vae_resumes_on_the_same_trajectory(tmp_path):
  _check_resume(tmp_path, make_vae, vae_config("smoke"))
