"""CLIP's two towers and its temperature as one Flax module, and the CLIP family (a `jaxgen.train.family.Family`).

`CLIPModel` (parameters 'image_encoder', 'text_encoder', 'text_projection', 'logit_scale'): the image tower
(`jaxgen.nn.vit.VisionTransformer`, whose last layer projects to `embed_dim` without bias), the text tower
(`jaxgen.nn.transformer.TextEncoder`, causal, pooled at each caption's end of text) followed by
`text_projection` (no bias) to `embed_dim`, and `logit_scale`, the log of the inverse temperature, initialised
at log(1 / 0.07) (its exponential is clipped at MAX_LOGIT_SCALE = 100 where it is used). Both embeddings come
out L2-normalised.

`CLIP` (the family): params are the module's variables {'params': ...}; `loss` is `jaxgen.clip.loss.clip_loss`
over the global batch with `text_ids` = the batch's tokens, so identical captions are positives of each other.
Parameter groups: 'default' and 'no_decay' (biases, LayerNorm scales, the class embedding and logit_scale, as
open_clip excludes them from weight decay; config.optim.groups.no_decay sets weight_decay=0 for them).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.clip.loss import MAX_LOGIT_SCALE, clip_loss, l2_normalize
from jaxgen.data.image import uint8_to_signed_unit

INIT_TEMPERATURE = 0.07
NO_DECAY_LEAVES = ("bias", "scale", "class_embedding", "logit_scale")


class CLIPModel(nn.Module):
  """Image tower, text tower, text projection and the log inverse temperature. `__call__(images, tokens)` ->
  (image embeddings, text embeddings), both (B, embed_dim) and unit-norm; images in [-1, 1]."""
  image_encoder: nn.Module          # returns (tokens, pooled (B, embed_dim))
  text_encoder: nn.Module           # returns (tokens, pooled (B, text width))
  embed_dim: int

  def setup(self):
    self.text_projection = nn.Dense(self.embed_dim, use_bias=False, name="text_projection",
                                    kernel_init=nn.initializers.normal(self.text_encoder.width ** -0.5))
    self.logit_scale = self.param("logit_scale", nn.initializers.constant(math.log(1 / INIT_TEMPERATURE)), (),
                                  jnp.float32)

  def encode_image(self, images: jnp.ndarray) -> jnp.ndarray:
    _, pooled = self.image_encoder(images)
    if pooled.shape[-1] != self.embed_dim:
      raise ValueError(f"the image tower gives {pooled.shape[-1]} features; embed_dim={self.embed_dim}")
    return l2_normalize(pooled)

  def encode_text(self, tokens: jnp.ndarray) -> jnp.ndarray:
    _, pooled = self.text_encoder(tokens)
    return l2_normalize(self.text_projection(pooled))

  def encode_text_tokens(self, tokens: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """(the text tower's per-token features (B, L, text width) after its final LayerNorm, the unit-norm text
    embeddings (B, embed_dim))."""
    features, pooled = self.text_encoder(tokens)
    return features, l2_normalize(self.text_projection(pooled))

  def __call__(self, images: jnp.ndarray, tokens: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray]:
    return self.encode_image(images), self.encode_text(tokens)

  def scale(self) -> jnp.ndarray:
    """exp(logit_scale) clipped at MAX_LOGIT_SCALE: the multiplier of the cosine similarities."""
    return jnp.exp(jnp.minimum(self.logit_scale, math.log(MAX_LOGIT_SCALE)))


@dataclasses.dataclass(frozen=True)
class CLIP:
  """The CLIP family: contrastive pre-training of `model` on batches with 'image' (uint8) and 'tokens'."""
  model: CLIPModel
  image_shape: Tuple[int, int, int]
  text_len: int                                      # token positions the text tower reads (the rest are pads)
  param_groups: Tuple[str, ...] = ("default", "no_decay")
  # uint8 images -> the towers' input: None, [-1, 1] (x / 127.5 - 1, the shapes runs'); (mean, std) per channel,
  # (x / 255 - mean) / std, as transformers' CLIPImageProcessor normalises for published weights.
  pixel_norm: Optional[Tuple[Tuple[float, ...], Tuple[float, ...]]] = None

  def pixels(self, images: jnp.ndarray) -> jnp.ndarray:
    """uint8 images as the image tower's input (see pixel_norm)."""
    if self.pixel_norm is None:
      return uint8_to_signed_unit(images)
    mean, std = (jnp.asarray(v, jnp.float32) for v in self.pixel_norm)
    return (jnp.asarray(images).astype(jnp.float32) / 255.0 - mean) / std

  def init(self, rng: jax.Array, batch: Dict[str, Any]):
    images = batch["image"]
    if tuple(images.shape[1:]) != tuple(self.image_shape):
      # A converted model's own input size (model.image_size), not the data set's: the parameters' shapes follow
      # the image tower's input, their values only the rng.
      images = jnp.zeros(images.shape[:1] + tuple(self.image_shape), jnp.uint8)
    return self.model.init(rng, self.pixels(images), batch["tokens"][:, :self.text_len])

  def param_labels(self, params):
    """'no_decay' for biases, LayerNorm scales, the class embedding and logit_scale; 'default' otherwise."""
    def label(path, _):
      return "no_decay" if getattr(path[-1], "key", None) in NO_DECAY_LEAVES else "default"
    return jax.tree_util.tree_map_with_path(label, params)

  def loss(self, params, batch: Dict[str, Any], rng: jax.Array):
    del rng                                          # no dropout, no augmentation
    tokens = batch["tokens"][:, :self.text_len]
    img, txt = self.model.apply(params, self.pixels(batch["image"]), tokens)
    loss, metrics = clip_loss(img, txt, params["params"]["logit_scale"], text_ids=tokens)
    return loss, {"loss": loss, **metrics}

  def encode_images(self, params, images: jnp.ndarray) -> jnp.ndarray:
    """(N, embed_dim) unit-norm embeddings of uint8 images (mapped by `pixels`), or of float images already as
    the tower takes them ([-1, 1]; normalised with pixel_norm's mean and std when it is set)."""
    x = self.pixels(images) if images.dtype == jnp.uint8 else images
    return self.model.apply(params, x, method=CLIPModel.encode_image)

  def encode_text(self, params, tokens: jnp.ndarray) -> jnp.ndarray:
    """(N, embed_dim) unit-norm embeddings of 0-padded token ids (N, L); positions from text_len on must be pads
    (what the data set's captions leave there)."""
    return self.model.apply(params, tokens[:, :self.text_len], method=CLIPModel.encode_text)

  def encode_text_features(self, params, tokens: jnp.ndarray) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """(per-token features (N, text_len, text width), unit-norm embeddings (N, embed_dim)) of token ids (N, L):
    the caption's context of unCLIP's prior (jaxgen.conditioners)."""
    return self.model.apply(params, tokens[:, :self.text_len], method=CLIPModel.encode_text_tokens)

  @property
  def text_width(self) -> int:
    return self.model.text_encoder.width

  def logit_scale(self, params) -> jnp.ndarray:
    """The clipped multiplier exp(logit_scale) (<= 100)."""
    return self.model.apply(params, method=CLIPModel.scale)
