"""The GAN family's sampling options (jaxgen.registry.FAMILIES['gan'].sample_options): `truncation`, the
keyword argument of GAN.sample, is config.gan.truncation; its value is set in a copy of the config and
checked by the family's validator (jaxgen.gan.build), where the field's rule lives."""
from __future__ import annotations

SAMPLING_FIELDS = {"truncation": "truncation"}


def apply_sample_options(config, options):
  """A copy of `config` with `options` ({'truncation': 0.7}) set in config.gan and validated; ValueError naming
  the unknown option or the bad field."""
  from jaxgen.gan.build import validate_gan_config
  unknown = sorted(set(options) - set(SAMPLING_FIELDS))
  if unknown:
    raise ValueError(f"sampling option {unknown[0]!r} is not one of the GAN's: {', '.join(SAMPLING_FIELDS)}")
  out = config.copy_and_resolve_references()
  with out.unlocked():
    for name, value in options.items():
      try:
        out.gan[SAMPLING_FIELDS[name]] = value
      except TypeError as e:
        raise ValueError(f"sampling option {name}={value!r} (gan.{SAMPLING_FIELDS[name]}): {e}") from None
  validate_gan_config(out)
  return out
