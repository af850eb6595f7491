"""Build GANs from ml_collections configs; `validate_gan_config` runs first (nothing compiled).

Network kinds: 'mlp' (the original GAN of Goodfellow et al. 2014 on 2-D toy data), 'dcgan'
(Radford et al. 2015 on images; class-conditional with model.num_classes > 0) and 'stylegan' (StyleGAN2,
Karras et al. 2020, unconditional: jaxgen.nn.stylegan; model.{w_dim, mapping_layers, g_channels, d_channels,
style_mixing, d_residual, mbstd_group}; gan.truncation_psi, its truncation in W when sampling).
Config fields: data.name, model.{kind, latent_dim, g_hidden, d_hidden | g_channels, d_channels, d_norm,
num_classes}, gan.{loss, gp_weight, r1_gamma, truncation} and, with their defaults (GAN_DEFAULTS):
gan.n_critic (D updates per G update, each on batch_size / n_critic examples), gan.r1_every (lazy R1),
gan.extra_groups ({group: '<player>/<top-level module>'}: a sub-network in an optimizer group of its own),
gan.truncation_psi (1.0: none; StyleGAN only).
The players' optimizers are the trainer's parameter groups, config.optim.groups.{generator, discriminator,
<extra group>}.
"""
from __future__ import annotations

import math

from jaxgen.data.specs import dataset_names, get_dataset_spec
from jaxgen.gan import losses

KINDS = ("mlp", "dcgan", "stylegan")
GAN_DEFAULTS = dict(n_critic=1, r1_every=1, extra_groups={}, truncation_psi=1.0)
RESERVED_GROUPS = ("generator", "discriminator", "frozen", "buffer", "default")


def gan_settings(config):
  g = config.gan
  return {k: (dict(g[k]) if k == "extra_groups" and k in g else g.get(k, v)) for k, v in GAN_DEFAULTS.items()}


def validate_gan_config(config) -> None:
  from jaxgen.nn.dcgan import D_NORMS, check_dcgan_shape
  m, g = config.model, config.gan
  if m.kind not in KINDS:
    raise ValueError(f"model.kind={m.kind!r}; choose one of: {', '.join(KINDS)}")
  losses.check_loss(g.loss)
  if m.latent_dim < 1:
    raise ValueError(f"model.latent_dim={m.latent_dim} must be >= 1")
  for name in ("gp_weight", "r1_gamma", "truncation"):
    if not (g[name] >= 0 and math.isfinite(g[name])):
      raise ValueError(f"gan.{name}={g[name]} must be a finite number >= 0")
  s = gan_settings(config)
  for name in ("n_critic", "r1_every"):
    if not (isinstance(s[name], int) and s[name] >= 1):
      raise ValueError(f"gan.{name}={s[name]!r} must be an int >= 1")
  if config.batch_size % s["n_critic"]:
    raise ValueError(f"batch_size={config.batch_size} must be a multiple of gan.n_critic={s['n_critic']} (each "
                     "discriminator update takes its own slice of the batch)")
  for group, path in s["extra_groups"].items():
    if group in RESERVED_GROUPS:
      raise ValueError(f"gan.extra_groups has group {group!r}; choose a name other than {', '.join(RESERVED_GROUPS)}")
    if not isinstance(path, str) or path.count("/") != 1 or path.split("/")[0] not in ("generator", "discriminator"):
      raise ValueError(f"gan.extra_groups.{group}={path!r} must be '<generator|discriminator>/<top-level module>'")
  psi = s["truncation_psi"]
  if not (isinstance(psi, (int, float)) and math.isfinite(psi) and psi >= 0):
    raise ValueError(f"gan.truncation_psi={psi!r} must be a finite number >= 0 (1: no truncation)")
  if m.kind != "stylegan" and psi != 1.0:
    raise ValueError(f"gan.truncation_psi={psi}: truncation in W needs model.kind='stylegan' (model.kind="
                     f"{m.kind!r}; its latent truncation is gan.truncation)")
  spec = get_dataset_spec(config.data.name)
  if m.kind == "stylegan":
    _validate_stylegan(config, spec, s)
    return
  if m.kind == "mlp":
    if spec.kind != "points":
      raise ValueError(f"data.name={spec.name!r}: the MLP GAN trains on 2-D points "
                       f"({', '.join(dataset_names('points'))})")
    return
  if spec.kind != "image":
    raise ValueError(f"data.name={spec.name!r} holds {spec.kind}; model.kind='dcgan' trains on images "
                     f"({', '.join(dataset_names('image'))})")
  check_dcgan_shape(spec.image_shape, tuple(m.g_channels), "model.g")
  check_dcgan_shape(spec.image_shape, tuple(m.d_channels), "model.d")
  if m.d_norm not in D_NORMS:
    raise ValueError(f"model.d_norm={m.d_norm!r}; choose one of: {', '.join(D_NORMS)}")
  if m.num_classes and m.num_classes != spec.num_classes:
    raise ValueError(f"model.num_classes={m.num_classes} but {spec.name} has {spec.num_classes} classes (or use 0)")
  if m.num_classes and config.num_samples % m.num_classes:
    raise ValueError(f"num_samples={config.num_samples} must be a multiple of model.num_classes={m.num_classes} "
                     "(one row of samples per class)")


def _validate_stylegan(config, spec, s) -> None:
  from jaxgen.nn.stylegan import check_stylegan_shape
  m = config.model
  if spec.kind != "image":
    raise ValueError(f"data.name={spec.name!r} holds {spec.kind}; model.kind='stylegan' trains on images "
                     f"({', '.join(dataset_names('image'))})")
  if m.get("num_classes", 0):
    raise ValueError(f"model.num_classes={m.num_classes}: model.kind='stylegan' is unconditional here (use 0)")
  check_stylegan_shape(spec.image_shape, tuple(m.g_channels), tuple(m.d_channels))
  for name in ("w_dim", "mapping_layers"):
    if not (isinstance(m[name], int) and m[name] >= 1):
      raise ValueError(f"model.{name}={m[name]!r} must be an int >= 1")
  if not 0.0 <= m.style_mixing <= 1.0:
    raise ValueError(f"model.style_mixing={m.style_mixing} must be a probability in [0, 1]")
  if not (isinstance(m.mbstd_group, int) and m.mbstd_group >= 1):
    raise ValueError(f"model.mbstd_group={m.mbstd_group!r} must be an int >= 1 (1: no minibatch stddev layer)")
  d_batch = config.batch_size // s["n_critic"]
  if d_batch % min(m.mbstd_group, d_batch):
    raise ValueError(f"model.mbstd_group={m.mbstd_group}: the discriminator's batch (batch_size / gan.n_critic = "
                     f"{d_batch}) must be a multiple of min(group, batch)")


def make_gan(config):
  """Assumes a validated config."""
  from jaxgen.gan.gan import GAN
  from jaxgen.nn.mlp import MLP, MLPLogit, leaky_relu_02
  m, g = config.model, config.gan
  if m.kind == "mlp":
    import flax.linen as nn
    gen = MLP(tuple(m.g_hidden), 2, activation=nn.relu)
    disc = MLPLogit(tuple(m.d_hidden), 1, activation=leaky_relu_02)
    shape, num_classes = (2,), 0
  elif m.kind == "stylegan":
    from jaxgen.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator
    shape, num_classes = get_dataset_spec(config.data.name).image_shape, 0
    gen = StyleGANGenerator(shape, tuple(m.g_channels), m.mapping_layers, m.w_dim, m.style_mixing)
    disc = StyleGANDiscriminator(tuple(m.d_channels), m.d_residual, m.mbstd_group)
  else:
    from jaxgen.nn.dcgan import DCGANDiscriminator, DCGANGenerator
    shape, num_classes = get_dataset_spec(config.data.name).image_shape, m.num_classes
    gen = DCGANGenerator(shape, tuple(m.g_channels), num_classes)
    disc = DCGANDiscriminator(tuple(m.d_channels), m.d_norm, num_classes)
  s = gan_settings(config)
  rules = tuple((path, group) for group, path in s["extra_groups"].items())
  return GAN(generator=gen, discriminator=disc, data_shape=tuple(shape), latent_dim=m.latent_dim, loss=g.loss,
             gp_weight=g.gp_weight, r1_gamma=g.r1_gamma, r1_every=s["r1_every"], n_critic=s["n_critic"],
             num_classes=num_classes, truncation=g.truncation, group_rules=rules,
             stochastic_generator=m.kind == "stylegan",
             truncation_psi=float(s["truncation_psi"]) if m.kind == "stylegan" else None)
