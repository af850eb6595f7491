"""CLIP (Radford et al. 2021): contrastive language-image pre-training (docs/clip.md).

  jaxgen.clip.loss    clip_loss, the symmetric InfoNCE over the global batch
  jaxgen.clip.model   CLIPModel (a ViT image tower, jaxgen.nn's TextEncoder, projections, the temperature) and the
                      CLIP family
  jaxgen.clip.build   validate_clip_config, make_clip (the registry's 'clip'; JAX-free to validate)
  jaxgen.clip.api     load_clip(workdir), encode_images, encode_text, score: CLIP for other families
  jaxgen.clip.tokenizer  BPETokenizer (OpenAI CLIP's byte-level BPE, from vocab.json + merges.txt), WordTokenizer
                      (the shapes words), run_tokenizer(run): whichever the run has
  jaxgen.clip.config  clip_config, the paper config (JAX-free)
  jaxgen.clip.convert_hf  python -m jaxgen.clip.convert_hf SRC DST: a Hugging Face CLIPModel as a jaxgen run
The names below are imported on first use, so `jaxgen.clip.build` (config validation) imports no JAX.
"""
import importlib

_EXPORTS = {"MAX_LOGIT_SCALE": "loss", "clip_loss": "loss", "same_caption": "loss", "CLIP": "model",
            "CLIPModel": "model", "encode_images": "api", "encode_text": "api", "load_clip": "api", "score": "api",
            "tokenize": "api", "BPETokenizer": "tokenizer", "WordTokenizer": "tokenizer",
            "run_tokenizer": "tokenizer"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name not in _EXPORTS:
    raise AttributeError(f"module 'jaxgen.clip' has no attribute {name!r}")
  return getattr(importlib.import_module(f"jaxgen.clip.{_EXPORTS[name]}"), name)
