"""Build GANs from ml_collections configs; `validate_gan_config` runs first (nothing compiled).

Network kinds: 'mlp' (the original GAN of Goodfellow et al. 2014 on 2-D toy data), 'dcgan'
(Radford et al. 2015 on images; class-conditional with model.num_classes > 0), 'progan' (Karras et al. 2018:
growing from 4x4, model.{g_channels, d_channels} one width per level, model.mbstd_group; gan.phase_steps steps
per phase and fade-in, jaxgen.gan.growth; usually with gan.loss='wgan', gan.gp_weight=10, gan.drift=0.001),
'cogan' (Liu & Tuzel 2016: a pair generator / pair discriminator over two domains with tied layers, jaxgen.nn.cogan; model.g_untied /
d_untied layers per domain, cogan.domain_b, unpaired data from jaxgen.gan.cogan), 'biggan' (Brock et
al. 2019, jaxgen.nn.biggan: model.{ch, g_mults, d_mults, d_down, shared_dim, hier, attn_res, num_classes}) and
'stylegan' (StyleGAN2, Karras et al. 2020, unconditional: jaxgen.nn.stylegan; model.{w_dim, mapping_layers,
g_channels, d_channels, style_mixing, d_residual, mbstd_group}; gan.truncation_psi, its truncation in W when sampling).
Config fields: data.name, model.{kind, latent_dim, g_hidden, d_hidden | g_channels, d_channels, d_norm,
num_classes}, gan.{loss, gp_weight, r1_gamma, truncation} and, with their defaults (GAN_DEFAULTS):
gan.n_critic (D updates per G update, each on batch_size / n_critic examples), gan.r1_every (lazy R1),
gan.drift (D loss += drift * E[D(x)^2], ProGAN), gan.phase_steps (progan only),
gan.extra_groups ({group: '<player>/<top-level module>'}: a sub-network in an optimizer group of its own),
gan.truncation_psi (1.0: none; StyleGAN only),
gan.ortho_weight (BigGAN's orthogonal regulariser of G, 0: off), gan.bn_stats (G's batch norm when sampling:
'batch', or 'running' / 'standing' for a generator with running statistics, i.e. model.kind='biggan'),
gan.standing_batches (batches averaged for standing statistics).
The players' optimizers are the trainer's parameter groups, config.optim.groups.{generator, discriminator,
<extra group>}.
Conditions: model.num_classes (a class label), or config.condition = dict(kind='clip_text', workdir=<a CLIP run>)
(jaxgen.conditioners: the frozen CLIP's text embedding of the caption, read by Reed et al.'s text-conditional
DCGAN players, jaxgen.nn.text_gan, with model.text_dim, 128 by default). For any conditional GAN:
gan.matching_aware (GAN-CLS) and gan.interpolation (GAN-INT, with gan.interpolation_beta; a text condition only).
"""
from __future__ import annotations

import math

from jaxgen.data.specs import dataset_names, get_dataset_spec
from jaxgen.gan import losses

KINDS = ("mlp", "dcgan", "progan", "cogan", "biggan", "stylegan")
GAN_DEFAULTS = dict(n_critic=1, r1_every=1, extra_groups={}, drift=0.0, phase_steps=0, matching_aware=False,
                    interpolation=False, interpolation_beta=0.5, truncation_psi=1.0,
                    ortho_weight=0.0, bn_stats="batch", standing_batches=16)
GAN_CONDITIONS = ("none", "clip_text")   # config.condition.kind of a GAN (jaxgen.conditioners)
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
  if not (s["drift"] >= 0 and math.isfinite(s["drift"])):
    raise ValueError(f"gan.drift={s['drift']} must be a finite number >= 0")
  if s["phase_steps"] and m.kind != "progan":
    raise ValueError(f"gan.phase_steps={s['phase_steps']} grows a 'progan' network only (model.kind={m.kind!r}); "
                     "use 0")
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
  for name in ("matching_aware", "interpolation"):
    if s[name] not in (True, False):
      raise ValueError(f"gan.{name}={s[name]!r} must be true or false")
  beta = s["interpolation_beta"]
  if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta <= 1.0:
    raise ValueError(f"gan.interpolation_beta={beta!r} must be a number in [0, 1]")
  spec = get_dataset_spec(config.data.name)
  _validate_condition(config, spec, s)
  psi = s["truncation_psi"]
  if not (isinstance(psi, (int, float)) and math.isfinite(psi) and psi >= 0):
    raise ValueError(f"gan.truncation_psi={psi!r} must be a finite number >= 0 (1: no truncation)")
  if m.kind != "stylegan" and psi != 1.0:
    raise ValueError(f"gan.truncation_psi={psi}: truncation in W needs model.kind='stylegan' (model.kind="
                     f"{m.kind!r}; its latent truncation is gan.truncation)")
  if m.kind == "stylegan":
    _validate_stylegan(config, spec, s)
    return
  if m.kind == "mlp":
    if spec.kind != "points":
      raise ValueError(f"data.name={spec.name!r}: the MLP GAN trains on 2-D points "
                       f"({', '.join(dataset_names('points'))})")
    return
  if spec.kind != "image":
    raise ValueError(f"data.name={spec.name!r} holds {spec.kind}; model.kind={m.kind!r} trains on images "
                     f"({', '.join(dataset_names('image'))})")
  if m.kind == "progan":
    _validate_progan(config, spec, s)
    return
  if m.kind == "biggan":
    _validate_biggan(config, spec)
  else:
    _validate_dcgan(config, spec)
  if m.kind == "cogan":
    from jaxgen.gan.cogan import validate_cogan
    for player, channels in (("g", m.g_channels), ("d", m.d_channels)):
      untied = m.get(f"{player}_untied", 1)
      if not (isinstance(untied, int) and 1 <= untied <= len(channels)):
        raise ValueError(f"model.{player}_untied={untied!r} must be an int in [1, {len(channels)}] (layers per "
                         f"domain; the other {len(channels) + 1} - {player}_untied are tied)")
    if m.num_classes:
      raise ValueError(f"model.num_classes={m.num_classes}: model.kind='cogan' is unconditional (use 0)")
    validate_cogan(config)
  if m.num_classes and m.num_classes != spec.num_classes:
    raise ValueError(f"model.num_classes={m.num_classes} but {spec.name} has {spec.num_classes} classes (or use 0)")
  if m.num_classes and config.num_samples % m.num_classes:
    raise ValueError(f"num_samples={config.num_samples} must be a multiple of model.num_classes={m.num_classes} "
                     "(one row of samples per class)")


def _validate_progan(config, spec, s):
  from jaxgen.nn.progan import num_levels
  m = config.model
  h, w, _ = spec.image_shape
  if h != w or h < 8 or h & (h - 1):
    raise ValueError(f"model.kind='progan' grows square images from 4x4 to a power-of-two resolution >= 8; "
                     f"{spec.name} is {h}x{w}")
  n = num_levels(h)
  for name in ("g_channels", "d_channels"):
    ch = tuple(m[name])
    if len(ch) != n or min(ch) < 1:
      raise ValueError(f"model.{name}={ch}: one width >= 1 per level, {n} levels (4x4 .. {h}x{h})")
  if m.get("num_classes", 0):
    raise ValueError(f"model.num_classes={m.num_classes}: the progressive GAN here is unconditional (use 0)")
  if not (isinstance(s["phase_steps"], int) and s["phase_steps"] >= 1):
    raise ValueError(f"gan.phase_steps={s['phase_steps']!r} must be an int >= 1 (steps of the 4x4 phase and of "
                     "each fade-in and stabilisation)")
  group, n_d = m.get("mbstd_group", 4), config.batch_size // s["n_critic"]
  if not (isinstance(group, int) and group >= 1) or n_d % min(group, n_d):
    raise ValueError(f"model.mbstd_group={group!r} must be an int >= 1 that divides the discriminator's batch "
                     f"(batch_size / n_critic = {n_d})")


def _validate_condition(config, spec, s) -> None:
  """config.condition (a frozen CLIP's caption embedding) and the options that need a condition."""
  from jaxgen.conditioners import clip_source, condition_settings
  cond = condition_settings(config)
  m = config.model
  if cond["kind"] not in GAN_CONDITIONS:
    raise ValueError(f"condition.kind={cond['kind']!r}; a GAN takes one of: {', '.join(GAN_CONDITIONS)}")
  if cond["cache"]:
    raise ValueError("condition.cache=True: a GAN encodes its conditions in the step; use condition.cache=False")
  if cond["kind"] == "clip_text":
    if m.kind != "dcgan":
      raise ValueError(f"condition.kind='clip_text' conditions Reed et al.'s text DCGAN; model.kind={m.kind!r} "
                       "(use 'dcgan')")
    if m.get("num_classes", 0):
      raise ValueError(f"condition.kind='clip_text' and model.num_classes={m.num_classes}: condition on the "
                       "caption or on the class, not both")
    if "tokens" not in dict(spec.feature_shapes):
      raise ValueError(f"condition.kind='clip_text' embeds captions; data.name={spec.name!r} has none")
    clip_source(cond["workdir"], "condition.workdir")
    text_dim = m.get("text_dim", 128)
    if not (isinstance(text_dim, int) and not isinstance(text_dim, bool) and text_dim >= 1):
      raise ValueError(f"model.text_dim={text_dim!r} must be an int >= 1")
  conditional = cond["kind"] != "none" or (m.kind != "mlp" and m.get("num_classes", 0))
  if s["matching_aware"] and not conditional:
    raise ValueError("gan.matching_aware=True (GAN-CLS) needs a conditional GAN (model.num_classes > 0 or "
                     "condition.kind='clip_text')")
  if s["interpolation"] and cond["kind"] != "clip_text":
    raise ValueError("gan.interpolation=True (GAN-INT) interpolates condition embeddings: it needs "
                     f"condition.kind='clip_text' (condition.kind={cond['kind']!r})")


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
  elif m.kind == "progan":
    from jaxgen.nn.progan import ProGANDiscriminator, ProGANGenerator, num_levels
    shape, num_classes = get_dataset_spec(config.data.name).image_shape, 0
    gen = ProGANGenerator(shape[0], tuple(m.g_channels), shape[2])
    disc = ProGANDiscriminator(shape[0], tuple(m.d_channels), m.get("mbstd_group", 4))
  elif m.kind == "cogan":
    from jaxgen.nn.cogan import CoGANDiscriminator, CoGANGenerator
    h, w, c = get_dataset_spec(config.data.name).image_shape
    gen = CoGANGenerator((h, w, c), tuple(m.g_channels), m.get("g_untied", 1))
    disc = CoGANDiscriminator(tuple(m.d_channels), m.d_norm, m.get("d_untied", 1))
    shape, num_classes = (h, 2 * w, c), 0          # a sample is the pair side by side
  elif m.kind == "stylegan":
    from jaxgen.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator
    shape, num_classes = get_dataset_spec(config.data.name).image_shape, 0
    gen = StyleGANGenerator(shape, tuple(m.g_channels), m.mapping_layers, m.w_dim, m.style_mixing)
    disc = StyleGANDiscriminator(tuple(m.d_channels), m.d_residual, m.mbstd_group)
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
  conditioner, parts, grid = _conditioner(config)
  if conditioner is not None:         # Reed et al. 2016: the players read the caption's text embedding
    from jaxgen.nn.text_gan import TextDCGANDiscriminator, TextDCGANGenerator
    text_dim = m.get("text_dim", 128)
    gen = TextDCGANGenerator(shape, tuple(m.g_channels), text_dim)
    disc = TextDCGANDiscriminator(tuple(m.d_channels), m.d_norm, text_dim)
  s = gan_settings(config)
  rules = tuple((path, group) for group, path in s["extra_groups"].items())
  growth = None
  if m.kind == "progan":
    from jaxgen.gan.growth import Growth
    growth = Growth(s["phase_steps"], num_levels(shape[0]), shape[0])
  return GAN(generator=gen, discriminator=disc, data_shape=tuple(shape), latent_dim=m.latent_dim, loss=g.loss,
             gp_weight=g.gp_weight, r1_gamma=g.r1_gamma, r1_every=s["r1_every"], n_critic=s["n_critic"],
             num_classes=num_classes, truncation=g.truncation, group_rules=rules, drift=s["drift"],
             growth=growth, conditioner=conditioner, frozen_parts=parts, grid_cond=grid,
             matching_aware=s["matching_aware"], interpolation=s["interpolation"],
             interpolation_beta=float(s["interpolation_beta"]), stochastic_generator=m.kind == "stylegan",
             truncation_psi=float(s["truncation_psi"]) if m.kind == "stylegan" else None,
             ortho_weight=s["ortho_weight"], bn_stats=s["bn_stats"], standing_batches=s["standing_batches"])


def _conditioner(config):
  """(condition encoder, frozen parts, grid sources) of config.condition: for condition.kind='clip_text' the CLIP
  text embedding only (condition.token_features is not read: the players take one vector); else (None, {}, None)."""
  from jaxgen import conditioners as cn
  cond = cn.condition_settings(config)
  if cond["kind"] == "none":
    return None, {}, None
  conditioner = cn.ClipTextCondition(cn.clip_source(cond["workdir"], "condition.workdir"), False, cn.CLIP_PART)
  return conditioner, {cn.CLIP_PART: cn.clip_part(cond["workdir"])}, cn.grid_sources(config, conditioner)
