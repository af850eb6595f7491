"""CLIP's symmetric contrastive (InfoNCE) loss over the global batch.

Every image is compared with every caption of the global batch, not only those on its own device: the loss of
a data-parallel run equals the loss of one device on the whole batch (tests/clip/test_clip_loss.py checks
values and gradients on 1 and 8 devices). Under `jax.jit` with the batch sharded over the mesh's 'data' axis,
call `clip_loss` on the global arrays and XLA gathers what each device needs; inside `shard_map` (or pmap),
pass `axis_name` and each device gathers the embeddings (`all_gather(..., tiled=True)`) and computes the rows
of its own examples.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp

MAX_LOGIT_SCALE = 100.0      # exp(logit_scale) is clipped to this, as in OpenAI CLIP


def l2_normalize(x: jnp.ndarray, eps: float = 1e-12) -> jnp.ndarray:
  """x / ||x|| along the last axis, in float32 (eps keeps a zero vector finite)."""
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + eps)


def same_caption(ids_a: jnp.ndarray, ids_b: jnp.ndarray) -> jnp.ndarray:
  """(Ra, Rb) boolean: row i of ids_a (Ra, L) equals row j of ids_b (Rb, L) token for token."""
  return jnp.all(ids_a[:, None, :] == ids_b[None, :, :], axis=-1)


def _soft_cross_entropy(logits: jnp.ndarray, positives: jnp.ndarray) -> jnp.ndarray:
  """Per row: cross-entropy of softmax(logits) against the uniform distribution over the row's positives."""
  log_p = jax.nn.log_softmax(logits, axis=-1)
  target = positives / jnp.sum(positives, axis=-1, keepdims=True)
  return -jnp.sum(target * log_p, axis=-1)


def _hits(logits: jnp.ndarray, positives: jnp.ndarray) -> jnp.ndarray:
  """Per row: 1.0 when the row's highest logit is one of its positives."""
  best = jnp.argmax(logits, axis=-1)
  return jnp.take_along_axis(positives, best[:, None], axis=-1)[:, 0].astype(jnp.float32)


def _check(image_emb, text_emb, text_ids) -> None:
  if image_emb.ndim != 2 or image_emb.shape != text_emb.shape:
    raise ValueError(f"image_emb {tuple(image_emb.shape)} and text_emb {tuple(text_emb.shape)} must both be "
                     f"(B, D) with the same B and D")
  if text_ids is not None and (text_ids.ndim != 2 or text_ids.shape[0] != image_emb.shape[0]):
    raise ValueError(f"text_ids has shape {tuple(text_ids.shape)}; it must be (B, L) with B={image_emb.shape[0]}")


def clip_loss(image_emb: jnp.ndarray, text_emb: jnp.ndarray, logit_scale: jnp.ndarray, *,
              text_ids: Optional[jnp.ndarray] = None,
              axis_name: Optional[str] = None) -> Tuple[jnp.ndarray, Dict[str, jnp.ndarray]]:
  """The symmetric InfoNCE loss of CLIP over the global batch: (loss, metrics).

  Both embeddings are L2-normalised; logits[i, j] = s * <image_i, text_j> with s = exp(min(logit_scale,
  log MAX_LOGIT_SCALE)): `logit_scale` is the log of the inverse temperature (a trained scalar, 1/0.07 at the
  start in CLIP) and s is clipped at 100 (no gradient flows to logit_scale above the clip). The loss is the
  mean of the image->text cross-entropy (softmax over each row, the captions) and the text->image one
  (softmax over each column, the images). The logits are computed at the highest matmul precision: at s = 100
  a TF32/bf16 dot product's error would be a visible error in the logits.

  Targets: without `text_ids`, the positive of image i is caption i only. With `text_ids` (B, L) token ids,
  every caption of the batch that equals caption i token for token is a positive of image i (and vice versa):
  the target of row i (and of column i) is uniform over {j : text_ids[j] == text_ids[i]}. Its effect, for a
  batch holding the same caption k times (common with templated captions such as the shapes data set's):
  - the accuracies count a hit on any copy as correct (with one-hot targets an image whose best caption is
    another copy of its own caption counts as a miss, so the accuracy of a perfect model is below 1);
  - when the copies' text embeddings are identical, as a deterministic text encoder makes them, the loss and
    its gradient with respect to the encoders' parameters are unchanged: summed over the k rows (or columns)
    of a group, the one-hot loss already equals the uniform-target loss, and its mean over the group is at
    least log k either way (tests/clip/test_clip_loss.py checks the equality);
  - when the copies' embeddings differ (dropout in the text tower, per-example text augmentation), one-hot
    targets push identical captions apart and towards their own images, an impossible task; uniform targets
    do not.
  Without duplicates both rules give the same loss and metrics.

  Args:
    image_emb, text_emb: (B, D) embeddings (any float dtype; the loss runs in float32). With `axis_name`,
      each device's rows of the global batch.
    logit_scale: scalar, the log inverse temperature.
    text_ids: optional (B, L) caption token ids (the device's rows with `axis_name`).
    axis_name: None under jit (pass the global arrays); inside shard_map / pmap, the mapped batch axis (e.g.
      'data'): the embeddings and ids are all-gathered (tiled) and each device computes its own rows; the
      returned loss and metrics are those of the global batch, the same on every device.

  Returns:
    loss (scalar float32) and metrics {'accuracy_i2t', 'accuracy_t2i': fraction of images (captions) whose
    highest logit is a positive caption (image); 'logit_scale': s, the clipped multiplier exp(logit_scale)}.
  """
  _check(image_emb, text_emb, text_ids)
  img, txt = l2_normalize(image_emb), l2_normalize(text_emb)
  scale = jnp.exp(jnp.minimum(jnp.asarray(logit_scale, jnp.float32), math.log(MAX_LOGIT_SCALE)))
  if axis_name is None:
    img_all, txt_all, ids_all, offset = img, txt, text_ids, 0
  else:
    gather = lambda x: jax.lax.all_gather(x, axis_name, tiled=True)   # noqa: E731
    img_all, txt_all = gather(img), gather(txt)
    ids_all = None if text_ids is None else gather(text_ids)
    offset = jax.lax.axis_index(axis_name) * img.shape[0]
  rows, total = img.shape[0], img_all.shape[0]
  if text_ids is None:
    positives = jnp.arange(total)[None, :] == (offset + jnp.arange(rows))[:, None]
  else:
    positives = same_caption(text_ids, ids_all)                    # (rows, total), the same both ways
  dot = lambda a, b: jnp.einsum("id,jd->ij", a, b, precision=jax.lax.Precision.HIGHEST)   # noqa: E731
  logits_i2t = scale * dot(img, txt_all)                           # this device's images vs every caption
  logits_t2i = scale * dot(txt, img_all)                           # this device's captions vs every image
  sums = jnp.stack([jnp.sum(_soft_cross_entropy(logits_i2t, positives)),
                    jnp.sum(_soft_cross_entropy(logits_t2i, positives)),
                    jnp.sum(_hits(logits_i2t, positives)), jnp.sum(_hits(logits_t2i, positives))])
  if axis_name is not None:
    sums = jax.lax.psum(sums, axis_name)
  means = sums / total
  loss = 0.5 * (means[0] + means[1])
  return loss, {"accuracy_i2t": means[2], "accuracy_t2i": means[3], "logit_scale": scale}
