"""The shared trainer on the DDPM family: learning, exact resume after an interruption, the non-finite
guard, and config errors raised before anything compiles."""
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.ddpm_cifar import get_config
from jaxgen.data import train_data_fn
from jaxgen.diffusion.build import make_ddpm
from jaxgen.train import optim, parallel, run, trainer


def _smoke_config(tmp_path, **overrides):
  config = get_config("smoke")
  config.data.data_dir = str(tmp_path / "tfds")
  config.tensorboard = False
  config.sample_every = 0
  for k, v in overrides.items():
    config[k] = v
  return config


def test_loss_falls_on_a_fixed_batch():
  config = get_config("smoke")
  config.model.dropout = 0.0
  config.optim.update(learning_rate=3e-3, warmup_steps=0)
  family = make_ddpm(config)
  mesh = parallel.make_data_mesh()
  images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)
  batch = parallel.global_batch({"image": images}, mesh)
  state = trainer.create_train_state(family, config, mesh, batch)
  eval_loss = jax.jit(lambda p: jnp.mean(jnp.stack(
      [family.loss(p, batch, jax.random.PRNGKey(i), train=False)[0] for i in range(8)])))
  before = float(eval_loss(state.params))
  step = trainer.make_train_step(family, mesh)
  for _ in range(40):
    state, _ = step(state, batch)
  after = float(eval_loss(state.params))
  assert int(state.step) == 40
  assert after < 0.8 * before, (before, after)


def test_interrupt_and_resume_matches_uninterrupted_run(tmp_path):
  steps = 6
  config = _smoke_config(tmp_path, num_train_steps=steps, checkpoint_every=100)
  straight = trainer.train(make_ddpm(config), config, str(tmp_path / "straight"), train_data_fn(config))
  assert int(straight.step) == steps

  # Same command, interrupted by SIGINT while it fetches the batch of step 3, then rerun.
  workdir = str(tmp_path / "interrupted")
  base_fn = train_data_fn(config)

  def interrupting_data_fn(start_step):
    for i, batch in enumerate(base_fn(start_step)):
      if start_step + i == 3:
        os.kill(os.getpid(), signal.SIGINT)
      yield batch

  with pytest.raises(trainer.TrainingInterrupted) as info:
    trainer.train(make_ddpm(config), config, workdir, interrupting_data_fn)
  stopped = info.value.step
  assert 3 <= stopped < steps and info.value.signum == signal.SIGINT
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == [str(stopped)]
  resumed = trainer.train(make_ddpm(config), config, workdir, base_fn)
  assert int(resumed.step) == steps
  for a, b in zip(jax.tree.leaves((straight.params, straight.ema_params, straight.opt_state)),
                  jax.tree.leaves((resumed.params, resumed.ema_params, resumed.opt_state))):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
  steps_logged = [int(line.split('"step": ')[1].split(",")[0].rstrip("}"))
                  for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert steps_logged[-1] == steps


class _LinearFamily:
  """w -> loss = (w - mean(x))^2: a family that compiles in milliseconds."""

  def init(self, rng, batch):
    return {"w": jnp.zeros(())}

  def loss(self, params, batch, rng):
    loss = (params["w"] - jnp.mean(batch["x"])) ** 2
    return loss, {"loss": loss}


def _ones_data_fn(start_step):
  while True:
    yield {"x": np.ones((4, 2), np.float32)}


def test_a_signal_during_the_evaluation_still_saves_that_step(tmp_path):
  """SIGTERM arriving after the step's checkpoint decision (while its samples or evaluation run) must still
  save the step it stops at: the message says so and the rerun resumes from it."""
  config = _smoke_config(tmp_path, num_train_steps=50, checkpoint_every=100, log_every=100, eval_every=4,
                         batch_size=4)
  calls = []

  def eval_fn(state, step):
    calls.append(step)
    os.kill(os.getpid(), signal.SIGTERM)
    return {"test/value": float(state.params["w"])}

  workdir = str(tmp_path / "w")
  with pytest.raises(trainer.TrainingInterrupted) as info:
    trainer.train(_LinearFamily(), config, workdir, _ones_data_fn, eval_fn=eval_fn)
  assert calls == [4] and info.value.step == 4 and info.value.signum == signal.SIGTERM
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4"]
  resumed = trainer.train(_LinearFamily(), config, workdir, _ones_data_fn)
  assert int(resumed.step) == 50


class _ExplodingFamily:
  """w -> loss = w * mean(x); the data turns infinite at step 3."""

  def init(self, rng, batch):
    return {"w": jnp.ones(())}

  def loss(self, params, batch, rng):
    loss = params["w"] * jnp.mean(batch["x"])
    return loss, {"loss": loss}


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
  config = _smoke_config(tmp_path, num_train_steps=10, checkpoint_every=2, log_every=5)

  def data_fn(start):
    step = start
    while True:
      yield {"x": np.full((16, 2), np.inf if step == 2 else 1.0, np.float32)}   # batch of step 3
      step += 1

  with pytest.raises(trainer.NonFiniteLossError, match="at step 3") as info:
    trainer.train(_ExplodingFamily(), config, str(tmp_path / "w"), data_fn)
  assert "last good checkpoint is step 2" in str(info.value)
  assert os.listdir(tmp_path / "w" / "checkpoints") == ["2"]


@pytest.mark.parametrize("field, value, message", [
    ("data.name", "cifar100", "unknown dataset 'cifar100'; choose one of: checkerboard, cifar10, digits"),
    ("model.ch_mult", (1, 2, 2, 2, 2), "image_size=8 is not divisible by the U-Net's down-sampling factor 16"),
    ("optim.learning_rate", -1e-3, "optim.learning_rate=-0.001 must be a finite number >= 0"),
    ("batch_size", 0, "batch_size=0 must be positive"),
    ("diffusion.variance", "learned", "diffusion.variance='learned'"),
])
def test_bad_config_fails_before_compiling(tmp_path, monkeypatch, field, value, message):
  config = _smoke_config(tmp_path)
  *parents, leaf = field.split(".")
  node = config
  for p in parents:
    node = node[p]
  node[leaf] = value
  compiled = []
  monkeypatch.setattr(trainer, "train", lambda *a, **k: compiled.append(1))
  monkeypatch.setattr(jax, "jit", lambda *a, **k: compiled.append(1))
  with pytest.raises(run.ConfigError) as info:
    run.run(config, str(tmp_path / "w"))
  assert message in str(info.value)
  assert not compiled


def test_batch_not_divisible_by_devices_is_named():
  with pytest.raises(ValueError, match=r"batch_size=12 is not divisible by the number of devices \(8\)"):
    parallel.check_batch_size(12, 8)


def test_optimizer_warmup_and_clipping():
  config = get_config("paper")
  opt = optim.make_group_optimizer(config.optim)
  sched = optim.learning_rate_schedule(2e-4, 5000)
  np.testing.assert_allclose([sched(0), sched(2500), sched(5000), sched(10 ** 6)], [0, 1e-4, 2e-4, 2e-4], rtol=1e-6)
  assert opt.schedules["default"](2500) == sched(2500)
  # Cosine decay (decay_steps): lr * (1 + cos(pi * (t - w) / (N - w))) / 2 after the warm-up, 0 from N on.
  cos = optim.learning_rate_schedule(1e-3, 100, 1100)
  t = np.array([50, 100, 350, 600, 1100, 5000])
  expected = np.where(t < 100, 1e-3 * t / 100, 5e-4 * (1 + np.cos(np.pi * np.clip(t - 100, 0, 1000) / 1000)))
  np.testing.assert_allclose([float(cos(i)) for i in t], expected, rtol=1e-5, atol=1e-10)
  with pytest.raises(ValueError, match=r"optim.decay_steps=100 must be 0 .* > warmup_steps=100"):
    optim.check_optim_config(dict(warmup_steps=100, decay_steps=100), ["default"])
  # Clipping: a huge gradient gives the same Adam step as a unit-norm one in the same direction (past warm-up).
  params = {"w": jnp.zeros(3)}
  opt_state = opt.init(params)
  for _ in range(3):
    _, opt_state = opt.update({"w": jnp.ones(3)}, opt_state, params)
  g = jnp.array([3.0, 4.0, 0.0])
  big, _ = opt.update({"w": 1e6 * g}, opt_state, params)
  unit, _ = opt.update({"w": g / 5.0}, opt_state, params)
  np.testing.assert_allclose(big["w"], unit["w"], rtol=1e-5)
  assert float(jnp.abs(big["w"]).max()) > 0


def test_global_norm_of_small_and_large_leaves_matches_a_float64_norm():
  rng = np.random.default_rng(3)
  leaves = [rng.standard_normal(s).astype(np.float32) for s in [(3,), (optim.SMALL_LEAF + 1,), (7, 5), (), (300, 300)]]
  want = np.sqrt(sum(np.sum(np.square(x.astype(np.float64))) for x in leaves))
  np.testing.assert_allclose(float(optim.global_norm([jnp.asarray(x) for x in leaves])), want, rtol=1e-6)
  assert float(optim.global_norm([])) == 0.0
  leaves[1][5] = np.nan
  assert not np.isfinite(float(optim.global_norm([jnp.asarray(x) for x in leaves])))
