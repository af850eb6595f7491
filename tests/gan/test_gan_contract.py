"""What the GAN zoo needs from the two-player step, on small MLP GANs through the trainer's own step:
n_critic discriminator updates per generator update, an extra named parameter group with its own learning
rate, a generator buffer updated by its forward pass and restored exactly, EMA of chosen groups only, lazy
R1 (every k steps, weighted by k) against a direct computation, and step-dependent phases (a fade-in alpha
from the step) in one compiled step, resumed mid-fade on the same trajectory."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxgen.gan import regularisers
from jaxgen.gan.gan import GAN
from jaxgen.nn.mlp import MLP, MLPLogit
from jaxgen.train import parallel, trainer
from jaxgen.train.checkpoint import Checkpointer


class TrackingGenerator(nn.Module):
  """An MLP generator that tracks the running mean of its outputs in a 'buffers' collection (as StyleGAN's
  tracked mean latent or BigGAN's running statistics are)."""

  @nn.compact
  def __call__(self, z):
    x = MLP((16,), 2, name="mlp")(nn.Dense(8, name="mapping")(z))
    mean = self.variable("buffers", "mean", lambda: jnp.zeros((2,)))
    if self.is_mutable_collection("buffers"):
      mean.value = 0.9 * mean.value + 0.1 * jnp.mean(x, axis=0)
    return x


def _config(**optim_groups):
  c = ml_collections.ConfigDict(dict(optim=dict(learning_rate=1e-3, warmup_steps=0, grad_clip=0.0, b1=0.5, b2=0.9,
                                                eps=1e-8, weight_decay=0.0, ema_decay=0.5, groups=optim_groups),
                                     seed=0))
  return c


def _gan(**kw):
  return GAN(generator=TrackingGenerator(), discriminator=MLPLogit((16,), 1), data_shape=(2,), latent_dim=4,
             group_rules=(("generator/mapping", "mapping"),), **kw)


def _state(gan, config):
  mesh = parallel.make_mesh(ml_collections.ConfigDict(dict(parallel=dict())))
  return mesh, trainer.create_train_state(gan, config, mesh, None)


def _batch(i):
  return {"points": np.asarray(jax.random.normal(jax.random.PRNGKey(100 + i), (20, 2)))}


def _adam_count(opt_state_group):
  counts = [x for x in jax.tree.leaves(opt_state_group) if np.ndim(x) == 0 and np.asarray(x).dtype == np.int32]
  return int(counts[0])


def test_n_critic_extra_group_and_generator_buffer_through_the_trainer_step(tmp_path):
  gan = _gan(n_critic=5)
  config = _config(mapping=dict(learning_rate=1e-5))
  assert gan.param_groups == ("generator", "discriminator", "mapping")
  assert gan.ema_groups == ("generator", "mapping")
  mesh, state = _state(gan, config)
  labels = state.opt.labels(state.params)
  assert labels["generator"]["params"]["mapping"]["kernel"] == "mapping"
  assert labels["generator"]["buffers"]["mean"] == "buffer"
  step = trainer.make_train_step(gan, mesh)
  init = jax.tree.map(np.asarray, state.params)
  for i in range(3):
    state, metrics = step(state, _batch(i))
  # 5 critic updates per step, 1 generator (and mapping) update per step
  assert _adam_count(state.opt_state["discriminator"]) == 15
  assert _adam_count(state.opt_state["generator"]) == 3 and _adam_count(state.opt_state["mapping"]) == 3
  assert float(metrics["learning_rate/mapping"]) == pytest.approx(1e-5)
  assert float(metrics["learning_rate/generator"]) == pytest.approx(1e-3)
  assert float(metrics["finite"]) == 1.0
  # the buffer moved through the generator's forward pass, never through the optimizer
  mean = np.asarray(state.params["generator"]["buffers"]["mean"])
  assert np.any(mean != 0) and not np.any(np.asarray(init["generator"]["buffers"]["mean"]))
  # the EMA covers the generator's groups; the discriminator's EMA is a copy of its params
  for a, b in zip(jax.tree.leaves(state.ema_params["discriminator"]), jax.tree.leaves(state.params["discriminator"])):
    np.testing.assert_array_equal(a, b)
  g_ema, g = state.ema_params["generator"]["params"], state.params["generator"]["params"]
  assert any(np.any(np.asarray(a) != np.asarray(b)) for a, b in zip(jax.tree.leaves(g_ema), jax.tree.leaves(g)))
  # exact restore of every leaf, buffers included
  ckpt = Checkpointer(str(tmp_path / "ckpt"), async_save=False)
  ckpt.save(3, state)
  restored = ckpt.restore(trainer.create_train_state(gan, config, mesh, None), 3)
  ckpt.close()
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_rule_naming_a_missing_module_is_refused():
  gan = dataclasses.replace(_gan(), group_rules=(("generator/nowhere", "mapping"),))
  with pytest.raises(ValueError, match="'generator/nowhere', but the generator's top-level modules are: mapping, mlp"):
    _state(gan, _config())


def test_lazy_r1_is_weighted_by_k_on_every_kth_step_only():
  gamma, k = 2.0, 4
  gan = _gan(r1_gamma=gamma, r1_every=k, n_critic=1)
  config = _config()
  mesh, state = _state(gan, config)
  batch = _batch(0)
  real = jnp.asarray(batch["points"])
  d_vars = state.params["discriminator"]
  direct = float(regularisers.r1_penalty(lambda x: gan.discriminate(d_vars, x)[0], real))

  from jaxgen.train.step import StepContext
  for s, want in ((0, direct), (1, 0.0), (4, direct)):
    st = state.replace(step=jnp.asarray(s, jnp.int32))
    _, m = jax.jit(lambda st: gan._d_update(st, StepContext(), real, None, jax.random.PRNGKey(1),
                                            jax.random.PRNGKey(2)))(st)
    assert float(m["r1"]) == pytest.approx(want, rel=1e-5)
    # the loss carries gamma / 2 * k * R1 on the regularised steps
    _, base = jax.jit(lambda st: dataclasses.replace(gan, r1_gamma=0.0)._d_update(
        st, StepContext(), real, None, jax.random.PRNGKey(1), jax.random.PRNGKey(2)))(st)
    assert float(m["d_loss"] - base["d_loss"]) == pytest.approx(0.5 * gamma * k * want, rel=1e-4, abs=1e-6)


# -- progressive growing on a toy: every phase's parameters at init, the phase and fade-in chosen in the step --

FADE = 4           # steps of each fade-in; phases: 0 on steps [0, 8), fade to 1 on [8, 12), 1 from 12


def fade_alpha(step):
  """0 before the fade-in, rising linearly over FADE steps, then 1: a pure function of the step."""
  return jnp.clip((step - 8) / FADE, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class GrowingRegressor:
  """A toy of progressive growing: a coarse head (phase 0) and a fine head (phase 1) both created at init; the
  step's alpha blends them, so one compiled step serves every phase and checkpoints never change shape."""
  traces = []

  def init(self, rng, batch=None):
    a, b = jax.random.split(rng)
    return {"coarse": jax.random.normal(a, (2,)), "fine": jax.random.normal(b, (2,))}

  def predict(self, params, x, step):
    alpha = fade_alpha(step)
    return (1 - alpha) * x @ params["coarse"] + alpha * x @ params["fine"]

  def update(self, state, batch, rng, opt):
    GrowingRegressor.traces.append(1)
    def loss_fn(p):
      return jnp.mean(jnp.square(self.predict(p, batch["x"], state.step) - batch["y"]))
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return opt.optimize(state, grads), {"loss": loss, "alpha": fade_alpha(state.step)}


def _toy_batches(start):
  for i in range(start, 100):
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(i), (8, 2)))
    yield {"x": x, "y": x @ np.array([1.0, -2.0])}


def test_a_fade_in_from_the_step_in_one_compiled_step_resumes_mid_fade_exactly(tmp_path):
  family = GrowingRegressor()
  config = ml_collections.ConfigDict(dict(
      family="toy", seed=0, batch_size=8, num_train_steps=16, log_every=1, checkpoint_every=10, keep_checkpoints=3,
      sample_every=0, num_samples=0, eval_every=0, tensorboard=False,
      optim=dict(learning_rate=1e-2, warmup_steps=0, grad_clip=0.0, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                 ema_decay=0.9, groups={}), parallel=dict()))
  GrowingRegressor.traces.clear()
  straight = trainer.train(family, config, str(tmp_path / "a"), _toy_batches)
  assert len(GrowingRegressor.traces) == 1            # one trace of the step for all 16 steps, both phases
  import json
  rows = [json.loads(line) for line in open(tmp_path / "a" / "metrics.jsonl")]
  alphas = {r["step"]: r["train/alpha"] for r in rows}
  assert alphas[8] == 0.0 and alphas[10] == pytest.approx(0.25) and alphas[16] == 1.0   # step s logs alpha(s - 1)
  # stopped at step 10, in the middle of the fade, and resumed
  trainer.train(family, _with_steps(config, 10),
                str(tmp_path / "b"), _toy_batches)
  resumed = trainer.train(family, config, str(tmp_path / "b"), _toy_batches)
  for a, b in zip(jax.tree.leaves((straight.params, straight.opt_state, straight.ema_params)),
                  jax.tree.leaves((resumed.params, resumed.opt_state, resumed.ema_params))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _with_steps(config, steps):
  c = ml_collections.ConfigDict(config.to_dict())
  c.num_train_steps = steps
  return c
