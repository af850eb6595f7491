"""Condition encoders: what turns a batch's raw condition (an image, a caption's token ids) into the features a
network reads (jaxgen.conditions), inside the compiled step, with a frozen part of another run. Shared by the
families that take `config.condition` (the DDPM: unCLIP's decoder and prior; the GAN: Reed et al.'s text-to-image
GAN), each with `frozen_parts` and `encode_cond`; their settings and builders are at the end of this module.

A network reads condition features such as cond['embedding'] (B, D) and
cond['token_features'] (B, L, W). A data set rarely holds them: unCLIP's decoder is conditioned on the CLIP image
embedding of the very image it learns to draw, its prior on the CLIP text embedding and token features of the
caption. A condition encoder declares
  inputs            the batch features it reads (('image',) or ('tokens',)): the family's `cond_features`, what
                    a training batch, an evaluation's held-out split and a sampling command supply;
  outputs, shapes   the network features it makes and their per-example shapes;
  encode(params, source) -> {feature: array}   a pure function of the family's whole params (its frozen part
                    lives under `part` there, jaxgen.train.frozen) and of the source features.
Condition dropout and guidance act on the encoded features (their null values: zeros), never on the source (a
blank image has a CLIP embedding of its own). A condition given already encoded (a prior's sampled image
embedding handed to the decoder) is taken as it is (jaxgen.diffusion.ddpm.DDPM.encode_cond).

CLIP embeddings are used at norm sqrt(D) (unit-norm embedding times `clip_scale(D)`): each coordinate then has
about unit variance, as the diffused data and the networks' inputs expect. Here and in
jaxgen.diffusion.codecs.ClipImageCodec (the prior diffuses the same scaled image embedding), so a prior's sample
is a valid decoder condition as it stands.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Tuple

CONDITIONS = ("none", "clip_image", "clip_text")   # config.condition.kind
CLIP_PART = "clip"          # the frozen part's name of a CLIP run (codec.kind='clip_image', condition.kind='clip_*')


def clip_scale(dim: int) -> float:
  """The factor that takes a unit-norm CLIP embedding of width `dim` to norm sqrt(dim)."""
  return math.sqrt(dim)


@dataclasses.dataclass(frozen=True)
class ClipImageCondition:
  """cond['embedding'] = clip_scale(D) * the frozen CLIP's image embedding of batch['image'] (unCLIP's decoder)."""
  clip: Any                              # jaxgen.clip.model.CLIP (built from the CLIP run's config)
  part: str = "clip"
  inputs: Tuple[str, ...] = ("image",)

  @property
  def shapes(self) -> Dict[str, Tuple[int, ...]]:
    return {"embedding": (self.clip.model.embed_dim,)}

  @property
  def outputs(self) -> Tuple[str, ...]:
    return tuple(self.shapes)

  def encode(self, params, source) -> Dict[str, Any]:
    import jax.numpy as jnp
    d = self.clip.model.embed_dim
    emb = self.clip.encode_images(params[self.part], jnp.asarray(source["image"]))
    return {"embedding": clip_scale(d) * emb.astype(jnp.float32)}


@dataclasses.dataclass(frozen=True)
class ClipTextCondition:
  """cond['embedding'] = clip_scale(D) * the frozen CLIP's text embedding of batch['tokens'] and, with
  `token_features`, cond['token_features'] = its text tower's per-token features (B, text_len, text width)
  (unCLIP's prior)."""
  clip: Any
  token_features: bool = True
  part: str = "clip"
  inputs: Tuple[str, ...] = ("tokens",)

  @property
  def shapes(self) -> Dict[str, Tuple[int, ...]]:
    out = {"embedding": (self.clip.model.embed_dim,)}
    if self.token_features:
      out["token_features"] = (self.clip.text_len, self.clip.text_width)
    return out

  @property
  def outputs(self) -> Tuple[str, ...]:
    return tuple(self.shapes)

  def encode(self, params, source) -> Dict[str, Any]:
    import jax.numpy as jnp
    d = self.clip.model.embed_dim
    features, emb = self.clip.encode_text_features(params[self.part], jnp.asarray(source["tokens"], jnp.int32))
    out = {"embedding": clip_scale(d) * emb.astype(jnp.float32)}
    if self.token_features:
      out["token_features"] = features.astype(jnp.float32)
    return out


# -- settings and builders, for every family with a condition encoder (DDPM, GAN) --------------------------------
def condition_settings(config):
  """config.condition: the condition encoder (this module). kind 'none' (the batch's own
  features), 'clip_image' (the frozen CLIP run in `workdir` embeds batch['image']: unCLIP's decoder) or
  'clip_text' (it embeds batch['tokens'], plus its per-token features with `token_features`: unCLIP's prior)."""
  c = config.get("condition") or {}
  return dict(kind=c.get("kind", "none"), workdir=c.get("workdir", ""), token_features=c.get("token_features", True),
              cache=c.get("cache", False))


def clip_source(workdir: str, field: str):
  """The CLIP family of the finished CLIP run in `workdir` (built from its config.json; no parameters read),
  or ValueError naming `field` and what is wrong."""
  import os
  if not workdir or not os.path.isfile(os.path.join(workdir, "config.json")):
    raise ValueError(f"{field}={workdir!r} holds no finished run (no config.json): train CLIP first "
                     "(experiments/clip_shapes.py) and point it at that workdir")
  from jaxgen import registry
  from jaxgen.train.run import read_run_config
  _, source = read_run_config(workdir)
  if source.get("family") != "clip":
    raise ValueError(f"{field}={workdir} holds a {source.get('family')!r} run; it must be a 'clip' run")
  return registry.resolve(registry.family_entry("clip").build)(source)


def clip_part(workdir: str):
  """The frozen part of a CLIP run: its trained params (what CLIP's own evaluation reads), checked to be CLIP."""
  from jaxgen.train.frozen import FrozenPart
  return FrozenPart(workdir, expect=(("family", "clip"),), use="trained")


def make_conditioner(config):
  """A family's condition encoder (None for condition.kind='none') and its frozen parts {name: FrozenPart}:
  one CLIP run, the part CLIP_PART."""
  cond = condition_settings(config)
  if cond["kind"] == "none":
    return None, {}
  clip = clip_source(cond["workdir"], "condition.workdir")
  if cond["kind"] == "clip_image":
    conditioner = ClipImageCondition(clip, CLIP_PART)
  else:
    conditioner = ClipTextCondition(clip, bool(cond["token_features"]), CLIP_PART)
  return conditioner, {CLIP_PART: clip_part(cond["workdir"])}


def grid_sources(config, conditioner, rows: int = 8):
  """The conditioner's inputs for the sample grid's rows: those of the first `rows` held-out examples (numpy)."""
  if conditioner is None:
    return None
  from jaxgen.data.specs import heldout_examples
  return heldout_examples(config.data.name, rows, tuple(conditioner.inputs))
