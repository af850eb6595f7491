"""Build GANs from ml_collections configs; `validate_gan_config` runs first (nothing compiled).

Three network kinds: 'mlp' (the original GAN of Goodfellow et al. 2014 on 2-D toy data), 'dcgan'
(Radford et al. 2015 on images; class-conditional with model.num_classes > 0) and 'biggan' (Brock et al. 2019,
jaxgen.nn.biggan: model.{ch, g_mults, d_mults, d_down, shared_dim, hier, attn_res, num_classes}).
Config fields: data.name, model.{kind, latent_dim, g_hidden, d_hidden | g_channels, d_channels, d_norm,
num_classes}, gan.{loss, gp_weight, r1_gamma, truncation} and, with their defaults (GAN_DEFAULTS):
gan.n_critic (D updates per G update, each on batch_size / n_critic examples), gan.r1_every (lazy R1),
gan.extra_groups ({group: '<player>/<top-level module>'}: a sub-network in an optimizer group of its own),
gan.ortho_weight (BigGAN's orthogonal regulariser of G, 0: off), gan.bn_stats (G's batch norm when sampling:
'batch', or 'running' / 'standing' for a generator with running statistics, i.e. model.kind='biggan'),
gan.standing_batches (batches averaged for standing statistics).
The players' optimizers are the trainer's parameter groups, config.optim.groups.{generator, discriminator,
<extra group>}.
"""
from __future__ import annotations

import math

from jaxgen.data.specs import dataset_names, get_dataset_spec
from jaxgen.gan import losses

KINDS = ("mlp", "dcgan", "biggan")
GAN_DEFAULTS = dict(n_critic=1, r1_every=1, extra_groups={}, ortho_weight=0.0, bn_stats="batch", standing_batches=16)
RUNNING_STATS_KINDS = ("biggan",)      # generators with running batch-norm statistics
RESERVED_GROUPS = ("generator", "discriminator", "frozen", "buffer", "default")


def gan_settings(config):
  g = config.gan
  return {k: (dict(g[k]) if k == "extra_groups" and k in g else g.get(k, v)) for k, v in GAN_DEFAULTS.items()}


def validate_gan_config(config) -> None:
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
  if not (s["ortho_weight"] >= 0 and math.isfinite(s["ortho_weight"])):
    raise ValueError(f"gan.ortho_weight={s['ortho_weight']} must be a finite number >= 0")
  from jaxgen.gan.gan import BN_STATS
  if s["bn_stats"] not in BN_STATS:
    raise ValueError(f"gan.bn_stats={s['bn_stats']!r}; choose one of: {', '.join(BN_STATS)}")
  if s["bn_stats"] != "batch" and m.kind not in RUNNING_STATS_KINDS:
    raise ValueError(f"gan.bn_stats={s['bn_stats']!r} needs a generator with running statistics "
                     f"(model.kind in {', '.join(RUNNING_STATS_KINDS)}); model.kind={m.kind!r} takes 'batch'")
  for name in ("n_critic", "r1_every", "standing_batches"):
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
  spec = get_dataset_spec(config.data.name)
  if m.kind == "mlp":
    if spec.kind != "points":
      raise ValueError(f"data.name={spec.name!r}: the MLP GAN trains on 2-D points "
                       f"({', '.join(dataset_names('points'))})")
    return
  if spec.kind != "image":
    raise ValueError(f"data.name={spec.name!r} holds {spec.kind}; model.kind={m.kind!r} trains on images "
                     f"({', '.join(dataset_names('image'))})")
  if m.kind == "biggan":
    _validate_biggan(config, spec)
  else:
    _validate_dcgan(config, spec)
  if m.num_classes and m.num_classes != spec.num_classes:
    raise ValueError(f"model.num_classes={m.num_classes} but {spec.name} has {spec.num_classes} classes (or use 0)")
  if m.num_classes and config.num_samples % m.num_classes:
    raise ValueError(f"num_samples={config.num_samples} must be a multiple of model.num_classes={m.num_classes} "
                     "(one row of samples per class)")


def _validate_biggan(config, spec) -> None:
  from jaxgen.nn.biggan import check_biggan_shape
  m = config.model
  for name in ("ch", "shared_dim"):
    if not (isinstance(m[name], int) and m[name] >= 1):
      raise ValueError(f"model.{name}={m[name]!r} must be an int >= 1")
  for name in ("g_mults", "d_mults"):
    if not m[name] or not all(isinstance(v, int) and v >= 1 for v in m[name]):
      raise ValueError(f"model.{name}={tuple(m[name])!r} must be a non-empty sequence of ints >= 1")
  if len(m.d_down) != len(m.d_mults):
    raise ValueError(f"model.d_down={tuple(m.d_down)} must have one entry per model.d_mults={tuple(m.d_mults)}")
  if not isinstance(m.hier, bool):
    raise ValueError(f"model.hier={m.hier!r} must be True or False")
  if not (isinstance(m.attn_res, int) and m.attn_res >= 0):
    raise ValueError(f"model.attn_res={m.attn_res!r} must be an int >= 0 (0: no self-attention)")
  check_biggan_shape(spec.image_shape, tuple(m.g_mults), tuple(m.d_down), m.latent_dim, m.hier, m.attn_res)


def _validate_dcgan(config, spec) -> None:
  from jaxgen.nn.dcgan import D_NORMS, check_dcgan_shape
  m = config.model
  check_dcgan_shape(spec.image_shape, tuple(m.g_channels), "model.g")
  check_dcgan_shape(spec.image_shape, tuple(m.d_channels), "model.d")
  if m.d_norm not in D_NORMS:
    raise ValueError(f"model.d_norm={m.d_norm!r}; choose one of: {', '.join(D_NORMS)}")


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
  elif m.kind == "biggan":
    from jaxgen.nn.biggan import BigGANDiscriminator, BigGANGenerator
    shape, num_classes = get_dataset_spec(config.data.name).image_shape, m.num_classes
    gen = BigGANGenerator(shape, m.ch, tuple(m.g_mults), num_classes, m.shared_dim, m.hier, m.attn_res)
    disc = BigGANDiscriminator(m.ch, tuple(m.d_mults), tuple(bool(d) for d in m.d_down), num_classes, m.attn_res)
  else:
    from jaxgen.nn.dcgan import DCGANDiscriminator, DCGANGenerator
    shape, num_classes = get_dataset_spec(config.data.name).image_shape, m.num_classes
    gen = DCGANGenerator(shape, tuple(m.g_channels), num_classes)
    disc = DCGANDiscriminator(tuple(m.d_channels), m.d_norm, num_classes)
  s = gan_settings(config)
  rules = tuple((path, group) for group, path in s["extra_groups"].items())
  return GAN(generator=gen, discriminator=disc, data_shape=tuple(shape), latent_dim=m.latent_dim, loss=g.loss,
             gp_weight=g.gp_weight, r1_gamma=g.r1_gamma, r1_every=s["r1_every"], n_critic=s["n_critic"],
             num_classes=num_classes, truncation=g.truncation, group_rules=rules, ortho_weight=s["ortho_weight"],
             bn_stats=s["bn_stats"], standing_batches=s["standing_batches"])
