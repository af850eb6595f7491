"""Every registered family on its smoke config honours the family contract (jaxgen.train.family):
init and two train steps through the trainer's optimizer path, checkpoints, resume from step 1 equal to the
uninterrupted run, samples of the right shape and range, metric names in the '<section>/<name>' scheme, and
logged learning rates that are the optimizer's."""
import fnmatch
import importlib
import json
import os
import shutil

import jax
import numpy as np
import pytest

from jaxgen import registry
from jaxgen.data import get_dataset_spec, train_data_fn
from jaxgen.eval import run_evals
from jaxgen.train import trainer
from jaxgen.train.family import METRIC_NAME, Family, MultiStepFamily

CASES = {
    # the unconditional eps-prediction DDPM is trained by tests/train/test_trainer.py and the smoke CLI test
    "ddpm_conditional_v_ddim": ("ddpm_cifar", {"model.num_classes": 10, "diffusion.prediction": "v",
                                               "diffusion.loss_weighting": "min_snr", "diffusion.guidance": 2.0,
                                               "diffusion.sampler": "ddim", "diffusion.sample_steps": 10,
                                               "evals": ("sample_metrics", "vlb", "diffusion_classifier")}),
    "ddpm_points_mlp": ("ddpm_toy2d", {}),
    "vae": ("vae_digits", {}),
    "gan_points": ("gan_toy2d", {}),
    "gan_conditional_spectral": ("dcgan_cifar", {"model.num_classes": 10, "model.d_norm": "spectral"}),
    "flow_glow_images": ("glow_cifar", {}),
    "flow_points": ("flow_toy2d", {"model.kind": "glow"}),
    "clip": ("clip_shapes", {}),
    "ldm_autoencoder": ("ldm_autoencoder", {}),
}


def _config(module, overrides, steps):
  config = importlib.import_module(f"experiments.{module}").get_config("smoke")
  for dotted, value in overrides.items():
    *parents, leaf = dotted.split(".")
    node = config
    for p in parents:
      node = node[p]
    node[leaf] = value
  config.update(num_train_steps=steps, log_every=1, checkpoint_every=100, sample_every=0, tensorboard=False)
  return config


def _train(config, workdir, with_evals=False):
  registry.validate_config(config)
  family = registry.resolve(registry.family_entry(config.family).build)(config)
  eval_fn = registry.make_eval_fn(config, family, str(workdir)) if with_evals else None
  return family, trainer.train(family, config, str(workdir), train_data_fn(config), eval_fn=eval_fn)


def test_every_family_is_covered():
  covered = {importlib.import_module(f"experiments.{m}").get_config("smoke").family for m, _ in CASES.values()}
  assert covered == set(registry.FAMILIES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_family_conformance(case, tmp_path):
  module, overrides = CASES[case]
  config = _config(module, overrides, steps=2)
  config.checkpoint_every = 1
  family, straight = _train(config, tmp_path / "straight", with_evals=True)
  assert isinstance(family, (Family, MultiStepFamily))
  entry = registry.family_entry(config.family)
  groups = trainer.param_groups(family)        # what the registry declares for it, then any the config adds
  assert groups[:len(entry.param_groups)] == entry.param_groups
  assert not hasattr(family, "train_step") and not hasattr(family, "make_optimizer")   # the trainer owns the update
  assert int(straight.step) == 2

  # the straight run's workdir as it stood after step 1 (its checkpoint of step 1, that of step 2 removed), then
  # the same command on it: resumes from the checkpoint of step 1
  shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
  shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "2")
  _, resumed = _train(config, tmp_path / "resumed")
  assert int(resumed.step) == 2 and (tmp_path / "resumed" / "checkpoints" / "2").is_dir()   # step 2 trained again
  a = jax.tree.leaves((straight.params, straight.ema_params, straight.opt_state))
  b = jax.tree.leaves((resumed.params, resumed.ema_params, resumed.opt_state))
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))

  # samples: shape and range (of the families that sample: CLIP does not)
  spec = get_dataset_spec(config.data.name)
  if hasattr(family, "sample"):
    x = np.asarray(jax.jit(lambda p: family.sample(p, jax.random.PRNGKey(0), 4))(straight.ema_params))
    assert x.shape == (4,) + tuple(spec.event_shape) and np.all(np.isfinite(x))
    if spec.kind == "image":
      assert x.min() >= -1.0 and x.max() <= 1.0

  # metric names, one row per step with the optimizer's learning rates
  rows = [json.loads(line) for line in open(tmp_path / "straight" / "metrics.jsonl")]
  names = {k for r in rows for k in r if k != "step"}
  assert names and all(METRIC_NAME.match(n) for n in names), sorted(names)
  assert any(n.startswith("train/") and n.endswith("loss") for n in names)
  # every metric is declared: the family's training metrics, the evaluations', or the trainer's own
  declared = registry.declared_metrics(config.family, config.evals) + TRAINER_METRICS
  undeclared = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in declared)]
  assert not undeclared, f"metrics not declared in jaxgen.registry: {undeclared}"
  opt = straight.opt
  for group in opt.groups:
    key = "train/learning_rate" if len(opt.groups) == 1 else f"train/learning_rate/{group}"
    logged = [r[key] for r in rows if key in r]
    assert len(logged) == 2
    # the update of step s uses the schedule at s - 1; the final state holds what the last update applied
    np.testing.assert_allclose(logged, [float(opt.schedules[group](s)) for s in (0, 1)], rtol=1e-6)
    assert logged[-1] == pytest.approx(float(opt.applied_learning_rate(straight.opt_state[group])), rel=1e-6)
    assert any(k.startswith("train/grad_norm") for k in names)
  if config.evals:
    assert any(not n.startswith(("train/", "perf/")) for n in names), "the evaluations wrote no metrics"
  # a family that draws no samples (CLIP): experiments.evaluate runs its own evaluations on the finished run,
  # and they give what the trainer's evaluation at the last step gave
  if not run_evals.samples(config.family):
    again = run_evals.evaluate_state(config, family, straight, 2, str(tmp_path / "straight"), log=lambda _: None)
    trained = {k: v for r in rows if r["step"] == 2 for k, v in r.items() if k in again}
    assert again and trained == pytest.approx(again, rel=1e-6)


# Logged by the trainer for every family (jaxgen.train.step, .logging), not declared per family.
TRAINER_METRICS = ("train/grad_norm*", "train/learning_rate*", "train/finite", "perf/*")


def _experiment_modules():
  """Every experiments/*.py that defines get_config (an experiment; sample.py and evaluate.py are commands)."""
  root = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "experiments")
  return sorted(name[:-3] for name in os.listdir(root)
                if name.endswith(".py") and "\ndef get_config(" in open(os.path.join(root, name)).read())


EXPERIMENTS = _experiment_modules()


def test_the_experiments_are_found():
  assert len(EXPERIMENTS) >= 10 and "ddpm_cifar" in EXPERIMENTS and "sample" not in EXPERIMENTS


@pytest.mark.parametrize("module", EXPERIMENTS)
def test_every_preset_of_every_experiment_validates(module, tmp_path):
  mod = importlib.import_module(f"experiments.{module}")
  presets = getattr(mod, "PRESETS", ("paper", "quick", "smoke"))
  for preset in presets:
    config = mod.get_config(preset)
    if config.get("study"):
      assert config.study in registry.STUDIES
      continue
    if config.get("codec", {}).get("kind") == "frozen_autoencoder" and not config.codec.workdir:
      # latent diffusion needs a finished first stage: refused without one, valid with its record
      with pytest.raises(ValueError, match=r"codec.workdir='' holds no finished run"):
        registry.validate_config(config)
      config.codec.workdir = _first_stage_record(tmp_path / f"{module}_{preset}", mod.FIRST_STAGE[preset])
    if config.get("condition", {}).get("kind", "none") != "none" and not config.condition.workdir:
      # unCLIP needs a finished CLIP run: refused without one, valid with its record
      with pytest.raises(ValueError, match=r"workdir='' holds no finished run"):
        registry.validate_config(config)
      config.condition.workdir = _clip_record(tmp_path / f"{module}_{preset}_clip", mod.CLIP_PRESET[preset])
      if config.get("codec", {}).get("kind") == "clip_image":
        config.codec.workdir = config.condition.workdir
    registry.validate_config(config)
    extra = set(config.get("gan", {}).get("extra_groups", {}))       # groups a GAN config adds (StyleGAN's mapping)
    assert set(config.optim.groups) <= set(registry.family_entry(config.family).param_groups) | extra


def _first_stage_record(workdir, preset):
  """A first-stage run directory as validation reads it (config.json and latent_scale.json; no checkpoint)."""
  from experiments import ldm_autoencoder
  from jaxgen.ldm.scaling import write_latent_scale
  from jaxgen.train.logging import MetricWriter
  from jaxgen.train.run import run_record
  os.makedirs(workdir)
  config = ldm_autoencoder.get_config(preset)
  MetricWriter(str(workdir), tensorboard=False).write_config(run_record(config, "experiments.ldm_autoencoder",
                                                                        str(workdir)))
  write_latent_scale(str(workdir), {"scale": 1.0, "std": 1.0, "mean": 0.0, "num_examples": 0, "step": 0})
  return str(workdir)


def _clip_record(workdir, preset):
  """A CLIP run directory as validation reads it (config.json; no checkpoint)."""
  from experiments import clip_shapes
  from jaxgen.train.logging import MetricWriter
  from jaxgen.train.run import run_record
  os.makedirs(workdir)
  config = clip_shapes.get_config(preset)
  MetricWriter(str(workdir), tensorboard=False).write_config(run_record(config, "experiments.clip_shapes",
                                                                        str(workdir)))
  return str(workdir)
