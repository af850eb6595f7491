"""Each evaluation validates the config fields it reads when the config is validated (jaxgen.eval.config via
jaxgen.registry.validate_config), naming the field, before anything trains; sampling options are checked by the
family that declares them. Function calls only: nothing is built or trained."""
import importlib

import pytest

from jaxgen import registry
from jaxgen.eval import config as eval_config


def _config(module, preset="smoke", **fields):
  config = importlib.import_module(f"experiments.{module}").get_config(preset)
  for dotted, value in fields.items():
    *parents, leaf = dotted.split("__")
    node = config
    for p in parents:
      node = node[p]
    with node.unlocked() if hasattr(node, "unlocked") else _nothing():
      node[leaf] = value
  return config


class _nothing:
  def __enter__(self):
    return self

  def __exit__(self, *a):
    return False


@pytest.mark.parametrize("module,preset,fields,message", [
    ("ddpm_cifar", "quick_cond", {"eval__classifier_score": "foo"}, r"eval.classifier_score='foo'; choose one of"),
    ("ddpm_cifar", "quick_cond", {"eval__classifier_timesteps": 501}, r"eval.classifier_timesteps=501 must be <="),
    ("ddpm_cifar", "smoke", {"eval__fid_samples": -5}, r"eval.fid_samples=-5 must be an integer >= 2"),
    ("ddpm_cifar", "smoke", {"eval__fid_samples": 1}, r"eval.fid_samples=1 must be an integer >= 2"),
    ("ddpm_cifar", "smoke", {"eval__batch_size": 0}, r"eval.batch_size=0 must be an integer >= 1"),
    ("ddpm_cifar", "smoke", {"eval__feature_net_steps": -1}, r"eval.feature_net_steps=-1"),
    ("ddpm_cifar", "smoke", {"eval__sample_options": {"foo": 1}}, r"eval.sample_options=.*'foo' is not one of"),
    ("ddpm_cifar", "smoke", {"eval__sample_options": {"steps": 51}},
     r"eval.sample_options=.*diffusion.sample_steps=51"),
    ("ddpm_cifar", "smoke", {"eval__sample_options": {"sampler": "euler"}}, r"diffusion.sampler='euler'"),
    ("vae_digits", "smoke", {"eval__num_iwae_samples": 0}, r"eval.num_iwae_samples=0 must be an integer >= 1"),
    ("vae_digits", "smoke", {"eval__iwae_chunk": 0}, r"eval.iwae_chunk=0"),
    ("vae_digits", "smoke", {"eval__sample_options": {"temperature": 0.7}}, r"family 'vae' takes none"),
    ("flow_toy2d", "smoke", {"eval__grid_size": 1}, r"eval.grid_size=1 must be an integer >= 2"),
    ("flow_toy2d", "smoke", {"eval__grid_limit": -1.0}, r"eval.grid_limit=-1.0 must be a finite number > 0"),
    ("glow_cifar", "smoke", {"figures__manipulate": (3, 3)}, r"figures.manipulate=\(3, 3\) must be two different"),
    ("glow_cifar", "smoke", {"figures__temperatures": ()}, r"figures.temperatures=\(\) must be a non-empty"),
    ("flow_classifier", "smoke", {"model__num_classes": 0}, r"'flow_classifier', which needs a class-conditional"),
    ("flow_classifier", "smoke", {"baseline__steps": 0}, r"baseline.steps=0"),
    ("dcgan_cifar", "smoke", {"eval__sample_options": {"truncation": -1.0}}, r"gan.truncation=-1.0 must be"),
])
def test_bad_eval_fields_are_named_at_validation(module, preset, fields, message):
  config = _config(module, preset, **fields)
  with pytest.raises(ValueError, match=message):
    registry.validate_config(config)


def test_eval_fields_are_checked_only_for_the_evaluations_that_read_them():
  config = _config("vae_digits", evals=(), eval__num_iwae_samples=0)
  registry.validate_config(config)            # no 'vae_heldout': its fields are not the family's business
  config.evals = ("vae_heldout",)
  with pytest.raises(ValueError, match="eval.num_iwae_samples=0"):
    registry.validate_config(config)


def test_each_evaluation_validator_runs_once(monkeypatch):
  calls = []
  monkeypatch.setattr(eval_config, "validate_sample_metrics", lambda c: calls.append("sample_metrics"))
  config = _config("ddpm_cifar", evals=("sample_metrics", "sample_metrics"))
  registry.validate_config(config)
  assert calls == ["sample_metrics"]


def test_every_evaluation_that_reads_config_fields_declares_a_validator_and_its_metrics():
  for name, entry in registry.EVALS.items():
    if entry.validate:
      assert callable(registry.resolve(entry.validate)), name
  assert {n for n, e in registry.EVALS.items() if not e.metrics} == {"vae_figures"}     # it only draws figures
  assert {n for n, e in registry.EVALS.items() if e.validate is None} == {"mode_coverage", "vae_figures"}


def test_sampling_options_are_applied_and_checked_by_the_family():
  config = _config("ddpm_cifar")
  out = registry.apply_sample_options(config, {"sampler": "ddim", "steps": 10, "spacing": "quadratic"})
  d = out.diffusion
  assert (d.sampler, d.sample_steps, d.timestep_spacing) == ("ddim", 10, "quadratic")
  assert config.diffusion.sampler == "ancestral"                 # the caller's config is left as it was
  assert registry.apply_sample_options(config, {}) is config
  with pytest.raises(ValueError, match="guidance=2.0 needs a conditional model"):
    registry.apply_sample_options(config, {"guidance": 2.0})
  with pytest.raises(ValueError, match="sampling option steps='ten'"):
    registry.apply_sample_options(config, {"steps": "ten"})
  flow = _config("glow_cifar")
  assert registry.apply_sample_options(flow, {"temperature": 0.7}) is flow
  with pytest.raises(ValueError, match="temperature=0 must be a finite number > 0"):
    registry.apply_sample_options(flow, {"temperature": 0})
  gan = _config("gan_toy2d")
  assert registry.apply_sample_options(gan, {"truncation": 0.5}).gan.truncation == 0.5


def test_every_eval_field_the_evaluations_read_has_a_validator():
  import os
  import re
  root = os.path.dirname(eval_config.__file__)
  read = set()
  for name in os.listdir(root):
    if name.endswith(".py") and name != "config.py":
      text = open(os.path.join(root, name)).read()
      read |= set(re.findall(r"config\.eval\.(\w+)", text))
      read |= set(re.findall(r"(?:config\.eval|get\(\"eval\", \{\}\))\.get\(\"(\w+)\"", text))
      if "e = config.eval" in text:
        read |= set(re.findall(r"\be\.(\w+)", text))
  read -= {"get"}
  assert {"fid_samples", "batch_size", "classifier_score", "num_iwae_samples", "sample_options"} <= read
  checked = open(eval_config.__file__).read()
  assert not [f for f in sorted(read) if f"eval.{f}" not in checked], "eval fields read but not validated"
