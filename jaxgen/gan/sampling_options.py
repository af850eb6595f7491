"""The GAN family's sampling options (jaxgen.registry.FAMILIES['gan'].sample_options): `truncation` and
`truncation_psi` (StyleGAN's, in W) and `bn_stats` (BigGAN's), the keyword arguments of GAN.sample, are
config.gan.truncation, config.gan.truncation_psi and config.gan.bn_stats; its value is set in a copy of the config and
checked by the family's validator (jaxgen.gan.build), where the field's rule lives."""
from __future__ import annotations

SAMPLING_FIELDS = {"truncation": "truncation", "truncation_psi": "truncation_psi", "bn_stats": "bn_stats"}


def apply_sample_options(config, options):
  """A copy of `config` with `options` ({'truncation': 0.7, 'bn_stats': 'standing'}) set in config.gan and validated; ValueError naming
  the unknown option or the bad field."""
  from jaxgen.gan.build import validate_gan_config
  from jaxgen.registry import options_to_config
  return options_to_config(config, options, "gan", SAMPLING_FIELDS, validate_gan_config, "GAN")
