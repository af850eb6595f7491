"""Build a DDPM from an ml_collections config; `validate_ddpm_config` runs first (no JAX computation).

Fields added after the first release are read with their defaults (DIFFUSION_DEFAULTS, MODEL_DEFAULTS), so
the config of an older run directory still builds the model it trained.
"""
from __future__ import annotations

from jaxgen.data.specs import get_dataset_spec
from jaxgen.diffusion import options as opts
from jaxgen.diffusion import schedules
from jaxgen.diffusion.options import DIFFUSION_DEFAULTS, MODEL_DEFAULTS, PRIOR_DEFAULTS
# the condition encoders' settings and builders, shared with the GAN family (jaxgen.conditioners)
from jaxgen.conditioners import CLIP_PART, clip_part as _clip_part, clip_source, condition_settings  # noqa: F401
from jaxgen.conditioners import grid_sources, make_conditioner  # noqa: F401


def _settings(section, defaults):
  return {k: section.get(k, v) for k, v in defaults.items()}


NETWORKS = ("unet", "mlp", "prior_transformer")   # config.model.kind: the U-Net for images; for vectors an MLP
                                                  # or unCLIP's prior Transformer (jaxgen.nn.prior_transformer)
CODECS = ("data", "frozen_autoencoder", "clip_image")  # config.codec.kind: the data set's own values, a frozen
                                                        # run's latents, or a frozen CLIP run's image embeddings
AUTOENCODER_FAMILIES = ("vae", "ldm_autoencoder")   # families giving latent_shape / encode_latents / decode_latents


def codec_settings(config):
  c = config.get("codec") or {}
  return dict(kind=c.get("kind", "data"), workdir=c.get("workdir", ""), scale=c.get("scale", 1.0),
              cache=c.get("cache", False))


def event_shape(config):
  """The shape of what the DDPM diffuses: the data's (images, points) or the frozen autoencoder's latents (its
  family built from its run's config, which reads no parameters)."""
  cs = codec_settings(config)
  if cs["kind"] == "frozen_autoencoder":
    from jaxgen import registry
    from jaxgen.train.run import read_run_config
    _, source = read_run_config(cs["workdir"])
    return tuple(int(n) for n in registry.resolve(registry.family_entry(source.family).build)(source).latent_shape)
  if cs["kind"] == "clip_image":
    return (int(clip_source(cs["workdir"], "codec.workdir").model.embed_dim),)
  return tuple(get_dataset_spec(config.data.name).event_shape)


def codec_scale(config) -> float:
  """codec.scale as a number: the config's, or with codec.scale='auto' the first stage's stored 1 / std of its
  latents (jaxgen.ldm.scaling.read_latent_scale: ValueError when it is missing or stale)."""
  cs = codec_settings(config)
  if cs["scale"] == "auto":
    from jaxgen.ldm.scaling import read_latent_scale
    return read_latent_scale(cs["workdir"])
  return float(cs["scale"])


def _validate_codec(config, spec) -> None:
  import os
  cs = codec_settings(config)
  if cs["kind"] not in CODECS:
    raise ValueError(f"codec.kind={cs['kind']!r}; choose one of: {', '.join(CODECS)}")
  if cs["kind"] == "data":
    return
  if spec.kind != "image":
    raise ValueError(f"codec.kind={cs['kind']!r} encodes images; data.name={spec.name!r} holds {spec.kind}")
  if cs["kind"] == "clip_image":
    _check_clip_images(clip_source(cs["workdir"], "codec.workdir"), spec, "codec.workdir", cs["workdir"])
    return
  if not cs["workdir"] or not os.path.isfile(os.path.join(cs["workdir"], "config.json")):
    raise ValueError(f"codec.workdir={cs['workdir']!r} holds no finished run (no config.json): train the "
                     "autoencoder first and point codec.workdir at its workdir")
  from jaxgen.train.run import read_run_config
  _, source = read_run_config(cs["workdir"])
  if source.get("family") not in AUTOENCODER_FAMILIES:
    raise ValueError(f"codec.workdir={cs['workdir']} holds a {source.get('family')!r} run; the frozen autoencoder "
                     f"must be one of: {', '.join(AUTOENCODER_FAMILIES)}")
  if source.data.name != spec.name:
    raise ValueError(f"codec.workdir={cs['workdir']} was trained on {source.data.name!r}, this run on {spec.name!r}")
  if cs["cache"] not in (True, False):
    raise ValueError(f"codec.cache={cs['cache']!r} must be true (latents encoded once, jaxgen.ldm.cache) or false "
                     "(encoded in every step)")
  if cs["cache"] and config.data.get("pipeline", "memory") != "memory":
    raise ValueError(f"codec.cache=True holds the latents in memory; data.pipeline={config.data.pipeline!r} "
                     "streams (use codec.cache=False)")
  if cs["cache"] and config.data.get("random_flip", False):
    raise ValueError("codec.cache=True needs data.random_flip=False (a flipped image's latent is not the flipped "
                     "latent)")
  if isinstance(cs["scale"], str):
    if cs["scale"] != "auto":
      raise ValueError(f"codec.scale={cs['scale']!r}; give a number > 0 or 'auto' (the first stage's stored 1/std)")
    codec_scale(config)
  elif isinstance(cs["scale"], bool) or not (cs["scale"] > 0):
    raise ValueError(f"codec.scale={cs['scale']!r} must be > 0 or 'auto'")


def _check_clip_images(clip, spec, field, workdir) -> None:
  if tuple(clip.image_shape) != tuple(spec.event_shape):
    raise ValueError(f"{field}={workdir} is a CLIP of {tuple(clip.image_shape)} images; data.name={spec.name!r} "
                     f"holds {tuple(spec.event_shape)} images")


def _validate_condition(config, spec):
  """config.condition against the data and the codec: {feature: per-example shape} of the features the network
  can be given (the condition encoder's outputs, else the data set's own features)."""
  cond = condition_settings(config)
  from jaxgen.conditioners import CONDITIONS
  if cond["kind"] not in CONDITIONS:
    raise ValueError(f"condition.kind={cond['kind']!r}; choose one of: {', '.join(CONDITIONS)}")
  if cond["cache"] not in (True, False):
    raise ValueError(f"condition.cache={cond['cache']!r} must be true (the encoder's outputs computed once for the "
                     "training split, jaxgen.unclip.cache) or false (in every step)")
  if cond["kind"] == "none":
    if cond["cache"]:
      raise ValueError("condition.cache=True caches a condition encoder's outputs; condition.kind='none' has none")
    return dict(spec.feature_shapes)
  clip = clip_source(cond["workdir"], "condition.workdir")
  cs = codec_settings(config)
  if cond["cache"]:
    if config.data.get("pipeline", "memory") != "memory":
      raise ValueError(f"condition.cache=True holds the embeddings in memory; data.pipeline={config.data.pipeline!r}"
                       " streams (use condition.cache=False)")
    if config.data.get("random_flip", False):
      raise ValueError("condition.cache=True needs data.random_flip=False (a flipped image's embedding is not the "
                       "flipped embedding)")
    if cs["kind"] == "frozen_autoencoder" and cs["cache"]:
      raise ValueError("condition.cache=True and codec.cache=True: cache one of them (the latents or the "
                       "embeddings), not both")
  if cs["kind"] == "clip_image" and cs["workdir"] != cond["workdir"]:
    raise ValueError(f"codec.workdir={cs['workdir']!r} and condition.workdir={cond['workdir']!r}: the codec and "
                     "the condition encoder share one frozen CLIP run; give the same workdir")
  if cond["kind"] == "clip_image":
    if spec.kind != "image":
      raise ValueError(f"condition.kind='clip_image' embeds images; data.name={spec.name!r} holds {spec.kind}")
    _check_clip_images(clip, spec, "condition.workdir", cond["workdir"])
    from jaxgen.conditioners import ClipImageCondition
    return ClipImageCondition(clip).shapes
  if "tokens" not in dict(spec.feature_shapes):
    raise ValueError(f"condition.kind='clip_text' embeds captions; data.name={spec.name!r} has none")
  if cond["token_features"] not in (True, False):
    raise ValueError(f"condition.token_features={cond['token_features']!r} must be true or false")
  from jaxgen.conditioners import ClipTextCondition
  return ClipTextCondition(clip, bool(cond["token_features"])).shapes


def validate_ddpm_config(config) -> None:
  """Raise ValueError naming the bad value: dataset and codec, the network against the event shape, schedule,
  sampler variance."""
  from jaxgen.nn.unet import check_unet_config
  spec = get_dataset_spec(config.data.name)
  _validate_codec(config, spec)
  provided = _validate_condition(config, spec)
  m = config.model
  kind = m.get("kind", "unet")
  if kind not in NETWORKS:
    raise ValueError(f"model.kind={kind!r}; choose one of: {', '.join(NETWORKS)}")
  shape = event_shape(config)
  if kind == "unet":
    if len(shape) != 3:
      raise ValueError(f"model.kind='unet' denoises images (H, W, C); this run diffuses tensors of shape {shape} "
                       "(use model.kind='mlp' or 'prior_transformer')")
    h, w, _ = shape
    for size in sorted({h, w}):
      check_unet_config(size, m.ch, tuple(m.ch_mult), m.num_groups, tuple(m.attn_resolutions))
  else:
    if len(shape) != 1:
      raise ValueError(f"model.kind={kind!r} denoises vectors (D,); this run diffuses tensors of shape {shape} "
                       "(use model.kind='unet')")
    for name in ("hidden", "depth", "temb_dim") if kind == "mlp" else ("width", "depth", "num_heads"):
      if not (isinstance(m.get(name), int) and m.get(name) >= 1):
        raise ValueError(f"model.{name}={m.get(name)!r} must be an int >= 1")
    if kind == "prior_transformer":
      _validate_prior(m, _provider(config, spec), provided)
  if not 0.0 <= m.get("dropout", 0.0) < 1.0:
    raise ValueError(f"model.dropout={m.dropout} must lie in [0, 1)")
  d = config.diffusion
  if d.beta_schedule not in schedules.SCHEDULES:
    raise ValueError(f"diffusion.beta_schedule={d.beta_schedule!r}; choose one of: {', '.join(schedules.SCHEDULES)}")
  opts.check_num_timesteps(d.num_timesteps)
  if d.variance not in opts.VARIANCES:
    raise ValueError(f"diffusion.variance={d.variance!r}; choose one of: {', '.join(opts.VARIANCES)}")
  if d.beta_schedule == "linear" and not 0 < d.beta_start <= d.beta_end < 1:
    raise ValueError(f"diffusion.beta_start={d.beta_start}, beta_end={d.beta_end}: need 0 < start <= end < 1")
  s, ms = _settings(d, DIFFUSION_DEFAULTS), _settings(m, MODEL_DEFAULTS)
  if s["prediction"] not in opts.PREDICTIONS:
    raise ValueError(f"diffusion.prediction={s['prediction']!r}; choose one of: {', '.join(opts.PREDICTIONS)}")
  if s["loss_weighting"] not in opts.WEIGHTINGS:
    raise ValueError(f"diffusion.loss_weighting={s['loss_weighting']!r}; choose one of: "
                     f"{', '.join(opts.WEIGHTINGS)}")
  if s["loss_weighting"] == "min_snr" and not s["min_snr_gamma"] > 0:
    raise ValueError(f"diffusion.min_snr_gamma={s['min_snr_gamma']} must be > 0")
  if s["sampler"] not in opts.SAMPLERS:
    raise ValueError(f"diffusion.sampler={s['sampler']!r}; choose one of: {', '.join(opts.SAMPLERS)}")
  if s["timestep_spacing"] not in opts.SPACINGS:
    raise ValueError(f"diffusion.timestep_spacing={s['timestep_spacing']!r}; choose one of: "
                     f"{', '.join(opts.SPACINGS)}")
  if not 0 <= s["sample_steps"] <= d.num_timesteps:
    raise ValueError(f"diffusion.sample_steps={s['sample_steps']} must lie in [0, num_timesteps={d.num_timesteps}]"
                     " (0 = all)")
  opts.timestep_subsequence(d.num_timesteps, s["sample_steps"], s["timestep_spacing"])
  if not s["eta"] >= 0:
    raise ValueError(f"diffusion.eta={s['eta']} must be >= 0")
  if not 0 <= s["label_dropout"] < 1:
    raise ValueError(f"diffusion.label_dropout={s['label_dropout']} must lie in [0, 1)")
  k = ms["num_classes"]
  if k and k != spec.num_classes:
    raise ValueError(f"model.num_classes={k} but {spec.name} has {spec.num_classes} classes (or use 0)")
  text = _validate_text(ms, spec, kind)
  embed = _validate_embedding(ms, _provider(config, spec), kind, provided)
  prior = _settings(m, PRIOR_DEFAULTS)
  prior_cond = kind == "prior_transformer" and bool(prior["text_embed_dim"] or prior["num_tokens"])
  if not (k or text or embed or prior_cond) and s["guidance"]:
    raise ValueError(f"diffusion.guidance={s['guidance']} needs a conditional model (model.num_classes > 0, "
                     "model.text_vocab > 0, model.embed_dim > 0, or a prior_transformer's model.text_embed_dim / "
                     "num_tokens > 0)")
  if (k or text or embed or prior_cond) and s["label_dropout"] == 0 and s["guidance"]:
    raise ValueError(f"diffusion.guidance={s['guidance']} needs label_dropout > 0: without it the null condition "
                     "is never trained")
  if ms["dtype"] not in opts.COMPUTE_DTYPES:
    raise ValueError(f"model.dtype={ms['dtype']!r}; choose one of: {', '.join(opts.COMPUTE_DTYPES)}")
  if ms["downsample_padding"] not in (0, 1):
    raise ValueError(f"model.downsample_padding={ms['downsample_padding']!r}; choose 0 (bottom/right) or 1 (all sides)")


def _validate_prior(m, who, provided) -> None:
  """model.* of model.kind='prior_transformer' (unCLIP's prior): its geometry, and its conditions against the
  features it can be given (`provided`: the condition encoder's, else the data set's; a condition nobody
  supplies could never be trained)."""
  p = _settings(m, PRIOR_DEFAULTS)
  if m.width % m.num_heads:
    raise ValueError(f"model.width={m.width} is not divisible by model.num_heads={m.num_heads}")
  if not (isinstance(p["mlp_ratio"], (int, float)) and not isinstance(p["mlp_ratio"], bool) and p["mlp_ratio"] > 0):
    raise ValueError(f"model.mlp_ratio={p['mlp_ratio']!r} must be > 0")
  if m.get("num_classes", 0):
    raise ValueError(f"model.num_classes={m.num_classes}: model.kind='prior_transformer' has no class embedding "
                     "(use 0; it is conditioned by model.text_embed_dim / num_tokens)")
  if m.get("dropout", 0.0):
    raise ValueError(f"model.dropout={m.dropout}: model.kind='prior_transformer' has no dropout (use 0)")
  for name in ("text_embed_dim", "num_tokens", "token_dim"):
    if isinstance(p[name], bool) or not (isinstance(p[name], int) and p[name] >= 0):
      raise ValueError(f"model.{name}={p[name]!r} must be an int >= 0 (0: no such condition)")
  if bool(p["num_tokens"]) != bool(p["token_dim"]):
    raise ValueError(f"model.num_tokens={p['num_tokens']}, model.token_dim={p['token_dim']}: set both (the "
                     "token features' length and width) or neither")
  for feature, need in (("embedding", (p["text_embed_dim"],)), ("token_features", (p["num_tokens"], p["token_dim"]))):
    if not need[0]:
      continue
    if tuple(provided.get(feature, ())) != need:
      field = "text_embed_dim" if feature == "embedding" else "num_tokens"
      have = f"gives it with shape {tuple(provided[feature])}" if feature in provided else "gives no such feature"
      raise ValueError(f"model.{field}={need[0]}: the prior reads cond[{feature!r}] of shape {need}; "
                       f"{who} {have} (use 0)")


def prior_kwargs(model, event_shape) -> dict:
  """jaxgen.nn.prior_transformer.PriorTransformer's arguments from config.model and the event shape (D,)."""
  import jax.numpy as jnp
  return dict(width=model["width"], depth=model["depth"], num_heads=model["num_heads"], embed_dim=event_shape[0],
              dtype=jnp.dtype(model.get("dtype", MODEL_DEFAULTS["dtype"])), **_settings(model, PRIOR_DEFAULTS))


def _provider(config, spec) -> str:
  kind = condition_settings(config)["kind"]
  return f"data.name={spec.name!r}" if kind == "none" else f"condition.kind={kind!r}"


def _validate_embedding(ms, who, kind, provided) -> bool:
  """model.embed_dim / embed_tokens (the U-Net conditioned on a vector, unCLIP's decoder): True when set."""
  dim, n = ms["embed_dim"], ms["embed_tokens"]
  if isinstance(dim, bool) or not (isinstance(dim, int) and dim >= 0):
    raise ValueError(f"model.embed_dim={dim!r} must be an int >= 0 (0: not conditioned on an embedding)")
  if not dim:
    return False
  if kind != "unet":
    raise ValueError(f"model.embed_dim={dim}: the embedding condition is the U-Net's; model.kind={kind!r} has none "
                     "(a prior_transformer reads model.text_embed_dim)")
  if isinstance(n, bool) or not (isinstance(n, int) and n >= 1):
    raise ValueError(f"model.embed_tokens={n!r} must be an int >= 1")
  if tuple(provided.get("embedding", ())) != (dim,):
    have = f"gives it with shape {tuple(provided['embedding'])}" if "embedding" in provided else "gives no such feature"
    raise ValueError(f"model.embed_dim={dim}: the U-Net reads cond['embedding'] of shape ({dim},); "
                     f"{who} {have} (use 0, or a condition.kind such as 'clip_image')")
  return True


def _validate_text(ms, spec, kind) -> bool:
  """model.text_* (text conditioning by cross-attention): True when the model is text-conditional."""
  from jaxgen.data.specs import CAPTIONED, caption_vocab_size
  vocab = ms["text_vocab"]
  if not vocab:
    return False
  if kind != "unet":
    raise ValueError(f"model.text_vocab={vocab}: text conditioning is the U-Net's cross-attention; "
                     f"model.kind={kind!r} has none")
  if spec.name not in CAPTIONED:
    raise ValueError(f"model.text_vocab={vocab} but data.name={spec.name!r} has no captions (captioned: "
                     f"{', '.join(CAPTIONED)}); use 0")
  need = caption_vocab_size(spec.name)
  if vocab < need:
    raise ValueError(f"model.text_vocab={vocab} is smaller than {spec.name}'s vocabulary of {need} tokens")
  length = dict(spec.feature_shapes)["tokens"][0]
  if ms["text_max_len"] != length:
    raise ValueError(f"model.text_max_len={ms['text_max_len']} must be {spec.name}'s caption length, {length}")
  for name in ("text_width", "text_depth", "text_heads", "cross_attn_heads"):
    if not (isinstance(ms[name], int) and ms[name] >= 1):
      raise ValueError(f"model.{name}={ms[name]!r} must be an int >= 1")
  if ms["text_width"] % ms["text_heads"]:
    raise ValueError(f"model.text_width={ms['text_width']} is not divisible by model.text_heads={ms['text_heads']}")
  return True


def unet_kwargs(model) -> dict:
  """jaxgen.nn.unet.UNet's arguments from config.model (the one place they are read; fields an older config
  lacks take MODEL_DEFAULTS, so its run directory still builds the network it trained)."""
  import jax.numpy as jnp
  kwargs = dict(ch=model["ch"], ch_mult=tuple(model["ch_mult"]), num_res_blocks=model["num_res_blocks"],
                attn_resolutions=tuple(model["attn_resolutions"]), dropout=model.get("dropout", 0.0),
                num_groups=model["num_groups"], **_settings(model, MODEL_DEFAULTS))
  kwargs["dtype"] = jnp.dtype(kwargs["dtype"])         # the config's name ('float32', 'bfloat16') -> a dtype
  return kwargs


def make_codec(config):
  """The DDPM's codec (jaxgen.diffusion.codecs) and its frozen parts {name: FrozenPart}."""
  from jaxgen.diffusion import codecs
  from jaxgen.train.frozen import FrozenPart
  spec = get_dataset_spec(config.data.name)
  cs = codec_settings(config)
  if cs["kind"] == "frozen_autoencoder":
    from jaxgen import registry
    from jaxgen.train.run import read_run_config
    _, source = read_run_config(cs["workdir"])
    autoencoder = registry.resolve(registry.family_entry(source.family).build)(source)
    part = FrozenPart(cs["workdir"], expect=(("family", source.family), ("data.name", spec.name)))
    return codecs.FrozenAutoencoderCodec(autoencoder, "autoencoder", codec_scale(config)), {"autoencoder": part}
  if cs["kind"] == "clip_image":
    clip = clip_source(cs["workdir"], "codec.workdir")
    return codecs.ClipImageCodec(clip, CLIP_PART), {CLIP_PART: _clip_part(cs["workdir"])}
  if spec.kind == "image":
    return codecs.ImageCodec(tuple(spec.event_shape)), {}
  return codecs.VectorCodec(tuple(spec.event_shape)), {}


def make_ddpm(config):
  """Assumes a validated config."""
  from jaxgen.diffusion.ddpm import DDPM
  m, d = config.model, config.diffusion
  ms, s = _settings(m, MODEL_DEFAULTS), _settings(d, DIFFUSION_DEFAULTS)
  if m.get("kind", "unet") == "unet":
    from jaxgen.nn.unet import UNet
    network = UNet(**unet_kwargs(m))
  elif m.kind == "prior_transformer":       # unCLIP's prior: a causal Transformer over [caption, t, x, query]
    from jaxgen.nn.prior_transformer import PriorTransformer
    network = PriorTransformer(**prior_kwargs(m, event_shape(config)))
  else:
    from jaxgen.nn.mlp import MLPDenoiser
    network = MLPDenoiser(hidden=m.hidden, depth=m.depth, temb_dim=m.temb_dim, num_classes=ms["num_classes"],
                          dropout=m.get("dropout", 0.0))
  kwargs = dict(beta_start=d.beta_start, beta_end=d.beta_end) if d.beta_schedule == "linear" else {}
  schedule = schedules.make_schedule(d.beta_schedule, d.num_timesteps, **kwargs)
  codec, frozen_parts = make_codec(config)
  conditioner, cond_parts = make_conditioner(config)
  frozen_parts = {**frozen_parts, **cond_parts}      # one 'clip' part when the codec and the encoder share it
  grid_tokens = ()
  if ms["text_vocab"]:
    from jaxgen.data.builders.shapes import tokenize
    from jaxgen.data.specs import heldout_captions
    grid_tokens = tuple(tuple(int(i) for i in tokenize(c)) for c in heldout_captions(config.data.name, 8))
  return DDPM(network=network, schedule=schedule, codec=codec, frozen_parts=frozen_parts, variance=d.variance,
              conditioner=conditioner, grid_cond=grid_sources(config, conditioner),
              clip_x0=d.clip_x0, num_classes=ms["num_classes"], grid_tokens=grid_tokens,
              **{k: v for k, v in s.items()})
