"""CLIP for other families and commands: embeddings and scores from a restored run (`load_clip(workdir)`, or any
`jaxgen.train.run.load_run(workdir)` of family 'clip'), or from a CLIP family object and its params.

  run = load_clip("workdirs/clip_quick")
  img = encode_images(run, images)              # (N, D) unit-norm, uint8 images (or in [-1, 1])
  txt = encode_text(run, tokens)                # (M, D) unit-norm, token ids (M, L)
  txt = encode_text(run, ["a small red circle"]) # captions, tokenized with the run's tokenizer
  logits = score(run, images, ["a small red circle", "a large blue star"])   # (N, M) = s * cosine
Captions given as strings are tokenized with the run's tokenizer (jaxgen.clip.tokenizer.run_tokenizer): the shapes
words for trained runs, the BPE saved in the workdir for runs converted from Hugging Face (jaxgen.clip.convert_hf).
Batches are padded to one compiled shape (`batch_size`), so any N is encoded exactly once. The trained
parameters are used by default (CLIP has no EMA); `params=` (e.g. run.state.ema_params) overrides them.
"""
from __future__ import annotations

import functools
from typing import Any, Optional, Sequence, Union

import jax
import numpy as np

from jaxgen.clip.model import CLIP
from jaxgen.eval.likelihood import evaluate_per_example


def load_clip(workdir: str, step: Optional[int] = None):
  """The CLIP run in `workdir` (jaxgen.train.run.Run), refusing a run of another family."""
  from jaxgen.train.run import load_run
  return load_run(workdir, step=step, expect={"family": "clip"})


def _family_params(run_or_family, params):
  if isinstance(run_or_family, CLIP):
    if params is None:
      raise ValueError("encoding with a CLIP family object needs its params=")
    return run_or_family, params
  family = getattr(run_or_family, "family", None)
  if not isinstance(family, CLIP):
    raise ValueError(f"{type(run_or_family).__name__} is neither a CLIP run (load_clip) nor a CLIP family")
  return family, run_or_family.state.params if params is None else params


@functools.lru_cache(maxsize=16)
def _jitted(family: CLIP, what: str):
  return jax.jit(getattr(family, what))


def _encode(family, params, what, arrays, batch_size):
  arrays = np.asarray(arrays)
  if len(arrays) == 0:
    raise ValueError(f"nothing to encode: {what} got an empty array")
  fn = _jitted(family, what)
  return evaluate_per_example(lambda b, _: fn(params, b["x"]), {"x": arrays}, min(batch_size, len(arrays)))


def encode_images(run_or_family, images, params: Any = None, batch_size: int = 500) -> np.ndarray:
  """(N, embed_dim) unit-norm image embeddings of uint8 images (N, H, W, C) (or floats in [-1, 1])."""
  family, params = _family_params(run_or_family, params)
  return _encode(family, params, "encode_images", images, batch_size)


def _is_text(captions) -> bool:
  if isinstance(captions, str):
    return True
  if isinstance(captions, np.ndarray):
    return captions.dtype.kind in "OUS"
  return len(captions) > 0 and isinstance(captions[0], str)


def caption_tokens(run_or_family, captions, tokenizer=None):
  """Token ids of `captions`: ids as they are, strings through `tokenizer` (default: the run's)."""
  if not _is_text(captions):
    return np.asarray(captions, np.int32)
  captions = [captions] if isinstance(captions, str) else list(captions)
  if tokenizer is None:
    if isinstance(run_or_family, CLIP):
      tokenizer = tokenize           # a bare family knows no workdir: the shapes words (pass tokenizer= for BPE)
    else:
      from jaxgen.clip.tokenizer import run_tokenizer
      tokenizer = run_tokenizer(run_or_family)
  return np.asarray(tokenizer(captions), np.int32)


def encode_text(run_or_family, tokens, params: Any = None, batch_size: int = 500, tokenizer=None) -> np.ndarray:
  """(M, embed_dim) unit-norm text embeddings of token ids (M, L), or of M caption strings (tokenized by
  `tokenizer`, default the run's: jaxgen.clip.tokenizer.run_tokenizer)."""
  family, params = _family_params(run_or_family, params)
  return _encode(family, params, "encode_text", caption_tokens(run_or_family, tokens, tokenizer), batch_size)


def tokenize(captions: Sequence[str]) -> np.ndarray:
  """(M, L) token ids of English captions in the shapes vocabulary (ValueError naming an unknown word)."""
  from jaxgen.data.builders.shapes import tokenize as shapes_tokenize
  return np.stack([shapes_tokenize(c) for c in captions])


def score(run_or_family, images, captions: Union[Sequence[str], np.ndarray], params: Any = None,
          tokenizer=None) -> np.ndarray:
  """(N, M) logits s * <image_i, caption_j> (s = the run's clipped exp(logit_scale)): captions as strings
  (tokenized by `tokenizer`, default the run's) or as (M, L) token ids."""
  family, params = _family_params(run_or_family, params)
  tokens = caption_tokens(run_or_family, captions, tokenizer)
  img = encode_images(family, images, params)
  txt = encode_text(family, tokens, params)
  return float(family.logit_scale(params)) * (img @ txt.T)
