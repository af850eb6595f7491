"""Build the CLIP family from an ml_collections config; `validate_clip_config` runs first (nothing compiled).

Config fields read here: data.name (an image data set with 'tokens'), model.{patch_size, vision_width,
vision_depth, vision_heads, text_width, text_depth, text_heads, text_len, embed_dim, mlp_ratio, activation,
scan}. The vocabulary is the data set's (shapes: jaxgen.data.builders.shapes.VOCAB); the text tower reads the
first model.text_len token positions (None: all MAX_TOKENS = 24 of shapes; at least the longest caption the data
set's grammar writes, 14 words, so only pads are cut and the embeddings are unchanged: the causal tower pools at
the last non-pad token, which sees no pad after it; the shapes words have no end-of-text token). The zero-shot
evaluation's fields are checked by its own validator (jaxgen.eval.config.validate_clip_zero_shot).
"""
from __future__ import annotations

from jaxgen.data.specs import get_dataset_spec

ACTIVATIONS = ("gelu", "quick_gelu")     # jaxgen.nn.transformer.ACTIVATIONS, without importing JAX


def _positive(m, field):
  value = m.get(field)
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise ValueError(f"model.{field}={value!r} must be an integer >= 1")
  return value


def vocab_size(data_name: str) -> int:
  """The token vocabulary of a captioned data set."""
  if data_name in ("shapes", "shapes_tiny"):
    from jaxgen.data.builders.shapes import VOCAB
    return len(VOCAB)
  raise ValueError(f"data.name={data_name!r}: no vocabulary known for it (CLIP trains on shapes, shapes_tiny)")


def longest_caption(data_name: str) -> int:
  """The most tokens a caption of the data set has (shapes: three objects, 14 words and commas)."""
  vocab_size(data_name)
  from jaxgen.data.builders import shapes as S
  scenes = [S.Scene(0, tuple((0, 0, 0, q, 8, 8) for q in quads)) for quads in ((0,), (0, 1), (0, 2), (0, 1, 2))]
  return max(int((S.tokenize(S.caption(scene)) != 0).sum()) for scene in scenes)


def text_len(config) -> int:
  """The token positions the text tower reads: model.text_len, or the data set's whole token length."""
  spec = get_dataset_spec(config.data.name)
  full = dict(spec.feature_shapes)["tokens"][0]
  return full if config.model.get("text_len") is None else config.model.text_len


def validate_clip_config(config) -> None:
  """ValueError naming the bad value."""
  spec = get_dataset_spec(config.data.name)
  if spec.kind != "image" or "tokens" not in spec.features:
    raise ValueError(f"data.name={spec.name!r} has no images with caption tokens; CLIP needs both "
                     f"(its features: {', '.join(spec.features)})")
  vocab_size(spec.name)
  m = config.model
  h, w, _ = spec.image_shape
  patch = _positive(m, "patch_size")
  if h % patch or w % patch:
    raise ValueError(f"model.patch_size={patch} must divide the image's height {h} and width {w}")
  for tower in ("vision", "text"):
    width, heads = _positive(m, f"{tower}_width"), _positive(m, f"{tower}_heads")
    _positive(m, f"{tower}_depth")
    if width % heads:
      raise ValueError(f"model.{tower}_width={width} is not divisible by model.{tower}_heads={heads}")
  _positive(m, "embed_dim")
  length, full, longest = text_len(config), dict(spec.feature_shapes)["tokens"][0], longest_caption(spec.name)
  if not isinstance(length, int) or isinstance(length, bool) or not longest <= length <= full:
    raise ValueError(f"model.text_len={length!r} must be an integer in [{longest}, {full}]: at least the longest "
                     f"caption of {spec.name} ({longest} tokens), at most its token length")
  if not m.mlp_ratio > 0:
    raise ValueError(f"model.mlp_ratio={m.mlp_ratio!r} must be > 0")
  if m.activation not in ACTIVATIONS:
    raise ValueError(f"model.activation={m.activation!r}; choose one of: {', '.join(ACTIVATIONS)}")


def make_clip(config):
  from jaxgen.clip.model import CLIP, CLIPModel
  from jaxgen.nn.transformer import TextEncoder
  from jaxgen.nn.vit import VisionTransformer
  spec = get_dataset_spec(config.data.name)
  m = config.model
  common = dict(mlp_ratio=m.mlp_ratio, activation=m.activation, scan=m.scan)
  visual = VisionTransformer(m.patch_size, m.vision_width, m.vision_depth, m.vision_heads, output_dim=m.embed_dim,
                             **common)
  text = TextEncoder(vocab_size(spec.name), text_len(config), m.text_width, m.text_depth, m.text_heads,
                     pool="last_nonpad", **common)
  return CLIP(model=CLIPModel(visual, text, m.embed_dim), image_shape=spec.image_shape, text_len=text_len(config))
