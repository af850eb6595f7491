"""Progressive GAN: its building blocks against direct computations (pixel norm, minibatch stddev, the
equalised-lr scaling, the fade-in schedule and the faded reals), fades that start where the previous level ends,
and the smoke preset through the trainer: a run killed in the middle of a fade-in resumes on exactly the same
trajectory, and its samples come at the level it trained at. One smoke run (straight) and one interrupted run
are shared by the tests."""
import json
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import progan
from jaxgen.gan.growth import Growth
from jaxgen.nn import progan as P
from jaxgen.train import run as run_mod, trainer


def _leaves_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def test_pixel_norm_and_minibatch_stddev_against_direct_computations():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(8, 3, 2, 5)).astype(np.float32)
  want = x / np.sqrt(np.mean(x ** 2, axis=-1, keepdims=True) + 1e-8)
  np.testing.assert_allclose(np.asarray(P.pixel_norm(jnp.asarray(x))), want, rtol=1e-5)
  out = np.asarray(P.minibatch_stddev(jnp.asarray(x), group_size=4))
  assert out.shape == (8, 3, 2, 6)
  np.testing.assert_array_equal(out[..., :5], x)
  for i in range(8):                       # example i's group: the examples j with j = i mod 2
    members = x[[j for j in range(8) if j % 2 == i % 2]]
    s = np.mean(np.sqrt(np.var(members.astype(np.float64), axis=0) + 1e-8))
    np.testing.assert_allclose(out[i, ..., 5], s, rtol=1e-5)
  with pytest.raises(ValueError, match="not a multiple of the group size"):
    P.minibatch_stddev(jnp.zeros((6, 2, 2, 1)), group_size=4)


def test_equalised_learning_rate_scales_unit_weights_at_run_time():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 6, 6, 10)), jnp.float32)
  conv = P.EqualizedConv(7, 3)
  v = conv.init(jax.random.PRNGKey(0), x)
  w = np.asarray(v["params"]["kernel"])
  assert w.shape == (3, 3, 10, 7) and abs(w.std() - 1.0) < 0.1          # stored at unit scale
  scale = math.sqrt(2.0) / math.sqrt(3 * 3 * 10)                         # He's constant, fan_in = 90
  ref = nn.Conv(7, (3, 3), padding="SAME").apply({"params": {"kernel": w * scale, "bias": v["params"]["bias"]}}, x)
  np.testing.assert_allclose(np.asarray(conv.apply(v, x)), np.asarray(ref), rtol=1e-5, atol=1e-5)
  dense = P.EqualizedDense(3, lr_multiplier=0.01)
  d = dense.init(jax.random.PRNGKey(1), x[:, 0, 0])
  wd, bd = np.asarray(d["params"]["kernel"]), np.asarray(d["params"]["bias"])
  want = np.asarray(x[:, 0, 0]) @ (wd * math.sqrt(2.0) / math.sqrt(10) * 0.01) + bd * 0.01
  np.testing.assert_allclose(np.asarray(dense.apply(d, x[:, 0, 0])), want, rtol=1e-5, atol=1e-6)


def _level_direct(step, t, n):
  if step < t:
    return 0.0
  s = step - t
  for p in range(1, n):
    if s < t:
      return p - 1 + s / t                 # fading level p in
    if s < 2 * t:
      return float(p)                      # stabilising it
    s -= 2 * t
  return float(n - 1)


def test_the_fade_in_schedule_and_the_faded_reals_against_direct_computations():
  g = Growth(phase_steps=5, num_levels=4, resolution=32)
  assert g.total_steps == 35
  for step in range(45):
    assert float(g.level(step)) == pytest.approx(_level_direct(step, 5, 4), abs=1e-6), step
  x = np.random.default_rng(2).uniform(-1, 1, size=(2, 32, 32, 3)).astype(np.float32)

  def pool(a, f):
    return a.reshape(2, 32 // f, f, 32 // f, f, 3).mean(axis=(2, 4))

  def up(a, f):
    return a.repeat(f, 1).repeat(f, 2)
  for level, want in ((0.0, up(pool(x, 8), 8)), (2.0, up(pool(x, 2), 2)), (3.0, x),
                      (1.25, up(0.25 * pool(x, 2) + 0.75 * up(pool(x, 4), 2), 2))):   # level 2 (16x16) fading in
    np.testing.assert_allclose(np.asarray(g.reals(jnp.asarray(x), level)), want, rtol=1e-5, atol=1e-6)


def test_a_fade_starts_where_the_previous_level_ends():
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 8))
  gen = P.ProGANGenerator(16, (16, 8, 8))
  gv = gen.init(jax.random.PRNGKey(1), z)
  disc = P.ProGANDiscriminator(16, (16, 8, 8), mbstd_group=2)
  dv = disc.init(jax.random.PRNGKey(2), jnp.zeros((4, 16, 16, 3)))
  for p in (1, 2):
    at, just_after = float(p - 1), p - 1 + 1e-6     # branch p - 1 (alpha 1) vs branch p at alpha ~ 0
    np.testing.assert_allclose(gen.apply(gv, z, level=at), gen.apply(gv, z, level=just_after), atol=1e-4)
    x = gen.apply(gv, z, level=at)
    np.testing.assert_allclose(disc.apply(dv, x, level=at), disc.apply(dv, x, level=just_after), atol=1e-4)
  # the output keeps the full resolution: a 4x4 level draws 4x4 blocks of equal pixels
  x0 = np.asarray(gen.apply(gv, z, level=0.0))
  assert x0.shape == (4, 16, 16, 3) and np.array_equal(x0, x0[:, ::4, ::4].repeat(4, 1).repeat(4, 2))


def test_the_phase_the_trainer_compiles_is_the_traced_levels_branch():
  """The host's integer phase (one compiled step each) is ceil(level) of the traced schedule at every step of
  the smoke, quick and paper schedules, and a static branch computes what the switch over levels does."""
  for t, n in ((2, 2), (400, 4), (50_000, 4)):
    g = Growth(phase_steps=t, num_levels=n, resolution=4 * 2 ** (n - 1))
    steps = np.arange(g.total_steps + 3 * t)
    traced = np.asarray(jax.vmap(lambda s: P.branch_and_alpha(g.level(s))[0])(jnp.asarray(steps)))
    host = np.array([g.phase(s) for s in steps])
    np.testing.assert_array_equal(host, traced)
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 8))
  gen = P.ProGANGenerator(16, (16, 8, 8))
  gv = gen.init(jax.random.PRNGKey(1), z)
  disc = P.ProGANDiscriminator(16, (16, 8, 8), mbstd_group=2)
  dv = disc.init(jax.random.PRNGKey(2), jnp.zeros((4, 16, 16, 3)))
  g = Growth(phase_steps=4, num_levels=3, resolution=16)
  for step in (0, 5, 6, 9, 14, 30):
    level, p = g.level(step), g.phase(step)
    x = gen.apply(gv, z, level=level, branch=p)
    np.testing.assert_allclose(x, gen.apply(gv, z, level=level), atol=2e-5)
    np.testing.assert_allclose(disc.apply(dv, x, level=level, branch=p), disc.apply(dv, x, level=level), atol=2e-4)
    reals = np.asarray(g.at_phase(p).reals(x, level))
    np.testing.assert_allclose(reals, np.asarray(g.reals(x, level)), atol=1e-6)
  with pytest.raises(ValueError, match="branch=3"):
    gen.apply(gv, z, level=2.0, branch=3)
  with pytest.raises(ValueError, match="growth phase 5"):
    g.at_phase(5)


def _config(steps):
  c = progan.get_config("smoke")
  c.update(tensorboard=False, num_train_steps=steps, checkpoint_every=3)
  return c


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("progan")
  straight, resumed = str(root / "straight"), str(root / "resumed")
  compiled = []                          # the growth branch of every train step the trainer compiles
  make = trainer.make_train_step

  def recording(family, *args, **kwargs):
    compiled.append(family.growth.branch)
    return make(family, *args, **kwargs)
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(trainer, "make_train_step", recording)
    run_mod.run(_config(6), straight, experiment="experiments.progan")
    run_mod.run(_config(3), resumed, experiment="experiments.progan")      # stopped at step 3, mid-fade
    run_mod.run(_config(6), resumed, experiment="experiments.progan")
  return {"straight": straight, "resumed": resumed, "compiled": compiled}


def test_a_run_killed_mid_fade_resumes_on_the_same_trajectory(runs):
  rows = [json.loads(line) for line in open(os.path.join(runs["straight"], "metrics.jsonl"))]
  levels = {r["step"]: r["train/growth_level"] for r in rows if "train/growth_level" in r}
  # logged every 2 steps, the mean over them: steps 0-1 at 4x4, the fade on 2-3 (0, 0.5), 8x8 on 4-5
  assert levels == {2: 0.0, 4: pytest.approx(0.25), 6: 1.0}
  # one step compiled per phase: 4x4 (steps 0-2: alpha 0 at 2), 8x8 from 3; the run resumed at 3 compiles 8x8
  assert runs["compiled"] == [0, 1, 0, 1]
  rows = [json.loads(line) for line in open(os.path.join(runs["resumed"], "metrics.jsonl"))]
  a, b = run_mod.load_run(runs["straight"]), run_mod.load_run(runs["resumed"])
  assert a.step == b.step == 6
  for x, y in ((a.state.params, b.state.params), (a.state.ema_params, b.state.ema_params),
               (a.state.opt_state, b.state.opt_state)):
    assert _leaves_equal(x, y)
  assert all(np.isfinite(r["train/d_loss"]) for r in rows if "train/d_loss" in r)
  assert "samples/fid" in rows[-1] and os.path.exists(os.path.join(runs["resumed"], "samples", "step_6.png"))


def test_samples_come_at_the_level_the_run_trained_at(runs):
  run = run_mod.load_run(runs["resumed"])
  assert float(run.state.ema_params["generator"]["growth"]["level"]) == 1.0
  x = np.asarray(run.family.sample(run.state.ema_params, jax.random.PRNGKey(0), 4))
  assert x.shape == (4, 8, 8, 1) and np.all(np.isfinite(x))
  at_4x4 = jax.tree.map(lambda a: a, run.state.ema_params)
  at_4x4["generator"]["growth"]["level"] = jnp.zeros(())
  y = np.asarray(run.family.sample(at_4x4, jax.random.PRNGKey(0), 4))
  assert np.array_equal(y, y[:, ::2, ::2].repeat(2, 1).repeat(2, 2)) and not np.allclose(x, y)


def test_the_validator_names_bad_progan_settings():
  from jaxgen.registry import validate_config
  for field, value, match in (("model.g_channels", (8,), "one width >= 1 per level"),
                              ("gan.phase_steps", 0, "gan.phase_steps=0 must be an int >= 1"),
                              ("model.mbstd_group", 5, "model.mbstd_group=5"),
                              ("gan.drift", -1.0, "gan.drift=-1.0")):
    c = progan.get_config("smoke")
    node, leaf = field.split(".")
    c[node][leaf] = value
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
      validate_config(c)
  c = progan.get_config("smoke")
  c.model.kind = "dcgan"
  c.model.update(d_norm="batch", num_classes=0)
  with pytest.raises(ValueError, match="grows a 'progan' network only"):
    validate_config(c)


def test_the_phase_figure_reads_the_grid_drawn_at_the_end_of_each_phase(runs, tmp_path):
  from jaxgen.gan.figures import phase_end_steps, progan_phase_figure
  assert phase_end_steps(400, 4, 3000) == [("4x4", 400), ("8x8", 1200), ("16x16", 2000), ("32x32", 3000)]
  with pytest.raises(ValueError, match="step_2.png is missing: the run drew no grid at the end of its 4x4 phase"):
    progan_phase_figure(runs["straight"], str(tmp_path / "phases.png"))   # the smoke run draws at step 6 only
