"""Guards every family gets from the trainer: a NaN in the gradients or the updated parameters stops any family
(not only a non-finite loss), at the step it appeared, with the last good checkpoint kept; constants labelled
'frozen' (Glow's permutation and signs) stay bit-identical under weight decay."""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import registry
from jaxgen.data import train_data_fn
from jaxgen.flows.glow import CONSTANT_KEYS
from jaxgen.train import trainer


class _NaNAfterInit:
  """Wraps a family: one trained parameter is NaN, so the loss may be finite but gradients / updates are not."""

  def __init__(self, family):
    self._family = family

  def __getattr__(self, name):
    return getattr(self._family, name)

  def init(self, rng, batch):
    params = self._family.init(rng, batch)
    labels = self._family.param_labels(params) if hasattr(self._family, "param_labels") else \
        jax.tree.map(lambda _: "default", params)
    done = []

    def poison(p, lab):
      if not done and lab not in ("frozen", "buffer") and p.size > 1 and jnp.issubdtype(p.dtype, jnp.floating):
        done.append(1)
        return p.at[(0,) * p.ndim].set(jnp.nan)
      return p
    return jax.tree.map(poison, params, labels)


@pytest.mark.parametrize("module", ["ddpm_cifar", "vae_digits", "dcgan_cifar", "glow_cifar"])
def test_a_nan_in_any_family_stops_training(module, tmp_path):
  config = importlib.import_module(f"experiments.{module}").get_config("smoke")
  config.update(num_train_steps=4, log_every=2, checkpoint_every=2, sample_every=0, tensorboard=False, evals=())
  family = registry.resolve(registry.family_entry(config.family).build)(config)
  with pytest.raises(trainer.NonFiniteLossError, match="at step 1") as info:
    trainer.train(_NaNAfterInit(family), config, str(tmp_path), train_data_fn(config))
  assert "gradients or updated parameters" in str(info.value) or "nan" in str(info.value)
  assert not (tmp_path / "checkpoints").exists() or not list((tmp_path / "checkpoints").iterdir())


def test_frozen_constants_survive_weight_decay(tmp_path):
  config = importlib.import_module("experiments.glow_cifar").get_config("smoke")
  config.update(num_train_steps=3, log_every=3, checkpoint_every=3, sample_every=0, tensorboard=False, evals=())
  config.optim.update(weight_decay=0.1, learning_rate=1e-2)
  family = registry.resolve(registry.family_entry(config.family).build)(config)
  state = trainer.train(family, config, str(tmp_path), train_data_fn(config))
  fresh = family.init(jax.random.split(jax.random.PRNGKey(config.seed))[0], next(train_data_fn(config)(0)))
  found = 0
  for (path, after), (_, before) in zip(jax.tree_util.tree_leaves_with_path(state.params),
                                        jax.tree_util.tree_leaves_with_path(fresh)):
    key = getattr(path[-1], "key", None)
    if key in CONSTANT_KEYS:
      found += 1
      np.testing.assert_array_equal(np.asarray(after), np.asarray(before))
    elif key == "log_s":
      assert float(jnp.abs(after - before).max()) > 0    # trained leaves did move (and decay)
  assert found >= 2
