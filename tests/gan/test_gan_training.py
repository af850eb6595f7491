"""GANs on the shared trainer: a short seeded MLP GAN covers the ring of 8 Gaussians (resume of GAN and VAE runs
is part of the conformance test, tests/train/test_conformance.py)."""
import jax
import numpy as np

from experiments.gan_toy2d import get_config as toy_config
from jaxgen.data.toy2d import RING_STD, ring_centers
from jaxgen.eval.mode_coverage import mode_coverage
from jaxgen.data import train_data_fn
from jaxgen.gan.build import make_gan
from jaxgen.train import parallel, trainer


def test_short_seeded_gan_covers_at_least_7_of_8_modes():
  config = toy_config("quick")
  gan = make_gan(config)
  mesh = parallel.make_data_mesh()
  data = train_data_fn(config)(0)
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
  assert np.isfinite(float(metrics["g_loss"])) and float(metrics["finite"]) == 1.0
