"""The DDPM family's sampling options (jaxgen.registry.FAMILIES['ddpm'].sample_options): the keyword arguments
of DDPM.sample that experiments.sample's flags and config.eval.sample_options give, checked before anything
compiles. Each option is a config.diffusion field (options.SAMPLING_FIELDS: steps -> diffusion.sample_steps,
spacing -> diffusion.timestep_spacing, ...); the option's value is set there in a copy of the config and the
family's validator checks it, so the rules of each field live in one place."""
from __future__ import annotations

from jaxgen.diffusion.options import SAMPLING_FIELDS


def apply_sample_options(config, options):
  """A copy of `config` with `options` ({'sampler': 'ddim', 'steps': 50, ...}) set in config.diffusion and
  validated; ValueError naming the unknown option or the bad field."""
  from jaxgen.diffusion.build import validate_ddpm_config
  from jaxgen.registry import options_to_config
  return options_to_config(config, options, "diffusion", SAMPLING_FIELDS, validate_ddpm_config, "DDPM")
