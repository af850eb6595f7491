"""Actnorm: data-dependent init gives zero mean / unit variance per channel, and a restored run keeps the
trained actnorm parameters (the init is an explicit step; nothing re-initialises after restore)."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgen.flows.glow import ActNorm


def test_actnorm_data_dependent_init():
  x = 3.0 + 5.0 * jax.random.normal(jax.random.PRNGKey(0), (16, 4, 4, 3)) * jnp.array([1.0, 0.1, 2.0])
  an = ActNorm()
  y, _ = an.forward(an.init(None, x), x)
  np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
  np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


def test_actnorm_not_reinitialised_after_restore(tmp_path):
  from experiments.flow_toy2d import get_config
  from jaxgen.flows.build import make_flow
  from jaxgen.data import train_data_fn as toy2d_data_fn
  from jaxgen.train.trainer import train
  cfg = get_config("smoke")
  cfg.model.kind = "glow"
  cfg.optim.learning_rate = 1e-2
  cfg.num_train_steps, cfg.checkpoint_every, cfg.log_every = 3, 3, 3
  cfg.tensorboard = False
  model = make_flow(cfg)
  first = train(model, cfg, str(tmp_path), toy2d_data_fn(cfg))
  resumed = train(model, cfg, str(tmp_path), toy2d_data_fn(cfg))   # restores step 3, trains nothing
  fresh = model.init(jax.random.split(jax.random.PRNGKey(cfg.seed))[0], next(toy2d_data_fn(cfg)(0)))
  an_first, an_resumed, an_fresh = (p[0] for p in (first.params, resumed.params, fresh))   # Repeat(Chain(actnorm,..))
  assert int(resumed.step) == 3
  for k in ("bias", "log_scale"):
    np.testing.assert_array_equal(an_resumed[k], an_first[k])
    assert float(jnp.abs(an_resumed[k] - an_fresh[k]).max()) > 1e-4   # trained away from the data-dependent init
