"""CLIP (Radford et al. 2021): contrastive language-image pre-training. So far its loss over the global batch
(`jaxgen.clip.loss`); the networks are jaxgen.nn's shared transformer (docs/clip.md)."""
from jaxgen.clip.loss import MAX_LOGIT_SCALE, clip_loss, same_caption

__all__ = ["MAX_LOGIT_SCALE", "clip_loss", "same_caption"]
