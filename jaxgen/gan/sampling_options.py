"""The GAN family's sampling options (jaxgen.registry.FAMILIES['gan'].sample_options): `truncation` and
`truncation_psi` (StyleGAN's, in W), the keyword arguments of GAN.sample, are config.gan.truncation and
config.gan.truncation_psi; its value is set in a copy of the config and
checked by the family's validator (jaxgen.gan.build), where the field's rule lives."""
from __future__ import annotations

SAMPLING_FIELDS = {"truncation": "truncation", "truncation_psi": "truncation_psi"}


def apply_sample_options(config, options):
  """A copy of `config` with `options` ({'truncation': 0.7}) set in config.gan and validated; ValueError naming
  the unknown option or the bad field."""
  from jaxgen.gan.build import validate_gan_config
  from jaxgen.registry import options_to_config
  return options_to_config(config, options, "gan", SAMPLING_FIELDS, validate_gan_config, "GAN")
