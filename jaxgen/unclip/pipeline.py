"""unCLIP's generation: captions -> (prior) -> CLIP image embeddings -> decoder -> images, reranked by CLIP;
and variations of an image (its CLIP image embedding decoded again).

  pipe = load_unclip("workdirs/unclip_decoder", prior="workdirs/unclip_prior")
  out = pipe.generate(["a small red circle above a large blue square"], num=4, rerank=8)
  out.images        uint8 (C, num, H, W, 3)   the `num` best of num * rerank candidates per caption
  out.scores        (C, num)                  their CLIP logits against the caption
  var = pipe.variations(images, num=8)        uint8 (N, 8, H, W, 3)

The decoder and the prior are finished runs of experiments/unclip_shapes.py (or any DDPM run with
condition.kind='clip_image', and one with codec.kind='clip_image' and condition.kind='clip_text'); both must have
been trained against the same CLIP parameters (their frozen.json fingerprints), and that CLIP run scores the
candidates. Without a prior (`prior=None`, or `use_prior=False`), the caption's CLIP text embedding is fed to the
decoder as if it were an image embedding (the paper's "no prior" ablation).

Sampling runs in compiled chunks of one shape (`chunk`), padded, so any number of samples costs one compile per
stage and guidance scale.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Sequence

import jax
import numpy as np


@dataclasses.dataclass
class Generated:
  images: np.ndarray               # uint8 (C, num, H, W, C)
  scores: np.ndarray               # (C, num) CLIP logits against each caption
  candidates: Optional[np.ndarray] = None       # uint8 (C, num * rerank, ...) when keep_candidates
  candidate_scores: Optional[np.ndarray] = None  # (C, num * rerank)


def _fingerprint(workdir: str) -> Dict[str, Any]:
  """The record of the frozen CLIP a run was trained against (jaxgen.train.frozen.read_records)."""
  from jaxgen.train.frozen import read_records
  rec = read_records(workdir)
  if "clip" not in rec:
    raise ValueError(f"{workdir} was not trained against a frozen CLIP (its frozen parts: {sorted(rec) or 'none'})")
  return rec["clip"]


class UnCLIP:
  """The decoder run, the prior run (or None) and their CLIP run, restored; see the module doc."""

  def __init__(self, decoder, prior=None, clip=None, chunk: int = 250):
    self.decoder, self.prior, self.chunk = decoder, prior, chunk
    if clip is None:
      from jaxgen.clip.api import load_clip
      clip = load_clip(decoder.config.condition.workdir, step=_fingerprint(decoder.workdir)["step"])
    self.clip = clip
    self.dim = int(clip.family.model.embed_dim)
    self._fns: Dict[Any, Any] = {}

  # --- embeddings -------------------------------------------------------------------------------------------
  @property
  def scale(self) -> float:
    from jaxgen.conditioners import clip_scale
    return clip_scale(self.dim)

  def tokens(self, captions) -> np.ndarray:
    """Token ids of caption strings (the CLIP run's tokenizer), or ids as they are."""
    from jaxgen.clip.api import caption_tokens
    return caption_tokens(self.clip, captions)

  def text_embeddings(self, captions) -> np.ndarray:
    from jaxgen.clip.api import encode_text
    return encode_text(self.clip, self.tokens(captions))

  def image_embeddings(self, images) -> np.ndarray:
    from jaxgen.clip.api import encode_images
    return encode_images(self.clip, np.asarray(images))

  # --- sampling in padded chunks ------------------------------------------------------------------------------
  def _sampler(self, run, chunk: int, guidance: float, options):
    key = (id(run), chunk, float(guidance), tuple(sorted((options or {}).items())))
    if key not in self._fns:
      fam = run.family
      self._fns[key] = jax.jit(lambda p, r, c: fam.sample(p, r, chunk, c, guidance=guidance, **(options or {})))
    return self._fns[key]

  def _sample(self, run, cond: Dict[str, np.ndarray], rng, guidance: float, options=None) -> np.ndarray:
    n = len(next(iter(cond.values())))
    chunk = min(self.chunk, n)
    fn = self._sampler(run, chunk, guidance, options)
    out = []
    for i, start in enumerate(range(0, n, chunk)):
      idx = np.arange(start, start + chunk) % n
      part = fn(run.params, jax.random.fold_in(rng, i), {k: v[idx] for k, v in cond.items()})
      out.append(np.asarray(part)[: min(chunk, n - start)])
    return np.concatenate(out)

  def prior_embeddings(self, tokens, rng, guidance: Optional[float] = None, options=None) -> np.ndarray:
    """(N, D) CLIP image embeddings at norm sqrt(D) sampled by the prior for token ids (N, L)."""
    if self.prior is None:
      raise ValueError("this unCLIP has no prior (load_unclip(..., prior=WORKDIR))")
    g = self.prior.family.guidance if guidance is None else guidance
    return self._sample(self.prior, {"tokens": np.asarray(tokens, np.int32)}, rng, g, options)

  def decode(self, embeddings, rng, guidance: Optional[float] = None, options=None) -> np.ndarray:
    """uint8 images (N, H, W, C) drawn by the decoder for embeddings (N, D) at norm sqrt(D)."""
    from jaxgen.data.image import signed_unit_to_uint8
    g = self.decoder.family.guidance if guidance is None else guidance
    x = self._sample(self.decoder, {"embedding": np.asarray(embeddings, np.float32)}, rng, g, options)
    return np.asarray(signed_unit_to_uint8(x))

  def embeddings_for(self, tokens, rng, *, use_prior: bool = True, guidance_prior: Optional[float] = None):
    """The decoder's conditions for token ids: the prior's samples, or the scaled CLIP text embeddings."""
    if use_prior:
      return self.prior_embeddings(tokens, rng, guidance_prior)
    return self.scale * self.text_embeddings(np.asarray(tokens, np.int32))

  # --- the user-facing operations ---------------------------------------------------------------------------
  def generate(self, captions, num: int = 1, *, rerank: int = 1, seed: int = 0, use_prior: Optional[bool] = None,
               guidance_prior: Optional[float] = None, guidance_decoder: Optional[float] = None,
               keep_candidates: bool = False) -> Generated:
    """`num` images per caption, each the best by CLIP score of `rerank` candidates (rerank=1: no reranking)."""
    from jaxgen.unclip.rerank import candidate_scores, keep_best
    if not (isinstance(num, int) and num >= 1) or not (isinstance(rerank, int) and rerank >= 1):
      raise ValueError(f"num={num!r} and rerank={rerank!r} must be ints >= 1")
    use_prior = self.prior is not None if use_prior is None else use_prior
    tokens = self.tokens(captions)
    c, k = len(tokens), num * rerank
    rng = jax.random.PRNGKey(seed)
    rep = np.repeat(tokens, k, axis=0)
    emb = self.embeddings_for(rep, jax.random.fold_in(rng, 1), use_prior=use_prior, guidance_prior=guidance_prior)
    images = self.decode(emb, jax.random.fold_in(rng, 2), guidance_decoder).reshape((c, k) + self.image_shape)
    img_emb = self.image_embeddings(images.reshape((c * k,) + self.image_shape)).reshape(c, k, -1)
    scores = candidate_scores(img_emb, self.text_embeddings(tokens), float(self.clip.family.logit_scale(
        self.clip.state.params)))
    if rerank > 1:                       # the best `num` of each caption's num * rerank candidates
      kept, kept_scores, _ = keep_best(images, scores, num)
    else:                                # no reranking: every candidate, in the order drawn
      kept, kept_scores = images, scores
    out = Generated(kept, kept_scores)
    if keep_candidates:
      out.candidates, out.candidate_scores = images, scores
    return out

  def variations(self, images, num: int = 8, *, seed: int = 0, guidance: Optional[float] = None) -> np.ndarray:
    """uint8 (N, num, H, W, C): `num` decoder samples of each image's CLIP image embedding."""
    images = np.asarray(images)
    if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
      raise ValueError(f"images of shape {tuple(images.shape)}; this unCLIP takes (N,) + {self.image_shape}")
    emb = np.repeat(self.scale * self.image_embeddings(images), num, axis=0)
    out = self.decode(emb, jax.random.PRNGKey(seed), guidance)
    return out.reshape((len(images), num) + self.image_shape)

  @property
  def image_shape(self):
    from jaxgen.data.specs import get_dataset_spec
    return tuple(get_dataset_spec(self.decoder.config.data.name).event_shape)


def load_unclip(decoder: str, prior: Optional[str] = None, *, chunk: int = 250) -> UnCLIP:
  """The decoder run in `decoder` (a DDPM with condition.kind='clip_image') and the prior run in `prior` (a DDPM
  with codec.kind='clip_image', condition.kind='clip_text'), refusing runs of another kind or trained against
  different CLIP parameters, each in one line."""
  from jaxgen.train.run import load_run
  dec = load_run(decoder, expect={"family": "ddpm", "condition.kind": "clip_image"})
  pri = None
  if prior:
    pri = load_run(prior, expect={"family": "ddpm", "codec.kind": "clip_image", "condition.kind": "clip_text"})
    a, b = _fingerprint(decoder), _fingerprint(prior)
    if a["fingerprint"] != b["fingerprint"]:
      raise ValueError(f"the decoder ({decoder}) was trained against the CLIP of {a['workdir']} step {a['step']}, "
                       f"the prior ({prior}) against {b['workdir']} step {b['step']}, other parameters "
                       f"(fingerprints {a['fingerprint']} != {b['fingerprint']}); train both against one CLIP")
  return UnCLIP(dec, pri, chunk=chunk)
