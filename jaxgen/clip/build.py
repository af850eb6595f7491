"""Build the CLIP family from an ml_collections config; `validate_clip_config` runs first (nothing compiled).

Config fields read here: data.name (an image data set with 'tokens'), model.{vision, patch_size, vision_width,
vision_depth, vision_heads, vision_layers, text_width, text_depth, text_heads, text_len, embed_dim, mlp_ratio,
activation, scan}. model.vision: 'vit' (the default; patch_size, vision_width/depth/heads) or 'resnet'
(jaxgen.nn.clip_resnet: vision_layers blocks per stage, vision_width middle channels in the first stage,
vision_heads for the attention pool; vision_depth and patch_size unused). The options of converted runs
(jaxgen.clip.convert_hf), whose defaults keep trained runs as they were:
model.tokenizer ('words', the default: the data set's words; 'bpe': a byte-level BPE whose files live in the run's
workdir, jaxgen.clip.tokenizer), model.vocab_size (BPE: its size), model.text_pool ('last_nonpad' for words;
'argmax' or 'eos' with model.eos_id for BPE), model.pad_token (BPE), model.image_size (None: the data set's
images; a converted model's square input size), model.image_mean and model.image_std (None: uint8 images map to
[-1, 1]; per-channel: (x / 255 - mean) / std, published weights' normalisation) and model.norm_eps (1e-5). For
words, the vocabulary is the data set's (shapes: jaxgen.data.builders.shapes.VOCAB); the text tower reads the
first model.text_len token positions (None: all MAX_TOKENS = 24 of shapes; at least the longest caption the data
set's grammar writes, 14 words, so only pads are cut and the embeddings are unchanged: the causal tower pools at
the last non-pad token, which sees no pad after it; the shapes words have no end-of-text token). The zero-shot
evaluation's fields are checked by its own validator (jaxgen.eval.config.validate_clip_zero_shot).
"""
from __future__ import annotations

from jaxgen.data.specs import get_dataset_spec

ACTIVATIONS = ("gelu", "quick_gelu")     # jaxgen.nn.transformer.ACTIVATIONS, without importing JAX
TOKENIZERS = ("words", "bpe")            # jaxgen.clip.tokenizer: the shapes words, the byte-level BPE
BPE_POOLS = ("argmax", "eos")            # where a BPE caption's end of text is (jaxgen.nn.transformer.pool_index)
VISION_TOWERS = ("vit", "resnet")


def _positive(m, field):
  value = m.get(field)
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise ValueError(f"model.{field}={value!r} must be an integer >= 1")
  return value


def vocab_size(data_name: str) -> int:
  """The token vocabulary of a captioned data set."""
  from jaxgen.data.specs import CAPTIONED, caption_vocab_size
  if data_name in CAPTIONED:
    return caption_vocab_size(data_name)
  raise ValueError(f"data.name={data_name!r}: no vocabulary known for it (CLIP trains on {', '.join(CAPTIONED)})")


def longest_caption(data_name: str) -> int:
  """The most tokens a caption of the data set has (shapes: three objects, 14 words and commas)."""
  vocab_size(data_name)
  from jaxgen.data.builders import shapes as S
  scenes = [S.Scene(0, tuple((0, 0, 0, q, 8, 8) for q in quads)) for quads in ((0,), (0, 1), (0, 2), (0, 1, 2))]
  return max(int((S.tokenize(S.caption(scene)) != 0).sum()) for scene in scenes)


def tokenizer_kind(config) -> str:
  """model.tokenizer: 'words' (the default) or 'bpe'; ValueError naming another value."""
  kind = config.model.get("tokenizer") or "words"
  if kind not in TOKENIZERS:
    raise ValueError(f"model.tokenizer={kind!r}; choose one of: {', '.join(TOKENIZERS)}")
  return kind


def image_shape(config):
  """(H, W, C) the image tower reads: model.image_size square RGB images, or the data set's image shape."""
  size = config.model.get("image_size")
  return get_dataset_spec(config.data.name).image_shape if size is None else (size, size, 3)


def text_len(config) -> int:
  """The token positions the text tower reads: model.text_len, or the data set's whole token length."""
  if tokenizer_kind(config) == "bpe":
    return config.model.text_len
  spec = get_dataset_spec(config.data.name)
  full = dict(spec.feature_shapes)["tokens"][0]
  return full if config.model.get("text_len") is None else config.model.text_len


def validate_clip_config(config) -> None:
  """ValueError naming the bad value."""
  spec = get_dataset_spec(config.data.name)
  if spec.kind != "image" or "tokens" not in spec.features:
    raise ValueError(f"data.name={spec.name!r} has no images with caption tokens; CLIP needs both "
                     f"(its features: {', '.join(spec.features)})")
  m = config.model
  bpe = tokenizer_kind(config) == "bpe"
  if not bpe:
    vocab_size(spec.name)
  if m.get("image_size") is not None:
    _positive(m, "image_size")
  h, w, _ = image_shape(config)
  tower = m.get("vision", "vit")
  if tower not in VISION_TOWERS:
    raise ValueError(f"model.vision={tower!r}; choose one of: {', '.join(VISION_TOWERS)}")
  if tower == "vit":
    patch = _positive(m, "patch_size")
    if h % patch or w % patch:
      raise ValueError(f"model.patch_size={patch} must divide the image's height {h} and width {w}")
  else:
    layers = m.get("vision_layers")
    if (not isinstance(layers, (tuple, list)) or not layers
        or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in layers)):
      raise ValueError(f"model.vision_layers={layers!r} must be a non-empty tuple of block counts >= 1 (one per "
                       f"stage) for model.vision='resnet'")
    down = 2 ** (len(layers) - 1)
    if h % down or w % down:
      raise ValueError(f"model.vision_layers={tuple(layers)} has {len(layers)} stages, downsampling by {down}, "
                       f"which must divide the image's height {h} and width {w}")
    out = m.vision_width * down * 4
    if isinstance(m.get("vision_heads"), int) and out % m.vision_heads:
      raise ValueError(f"model.vision_heads={m.vision_heads} must divide the ResNet's {out} output channels "
                       f"(vision_width * 2**(stages-1) * 4)")
  for name in ("vision", "text"):
    width, heads = _positive(m, f"{name}_width"), _positive(m, f"{name}_heads")
    if name == "vision" and tower == "resnet":
      continue
    _positive(m, f"{name}_depth")
    if width % heads:
      raise ValueError(f"model.{name}_width={width} is not divisible by model.{name}_heads={heads}")
  _positive(m, "embed_dim")
  eps = m.get("norm_eps", 1e-5)
  if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
    raise ValueError(f"model.norm_eps={eps!r} must be a positive number")
  norm = [m.get("image_mean"), m.get("image_std")]
  if norm != [None, None]:
    for field, value in zip(("image_mean", "image_std"), norm):
      if (not isinstance(value, (list, tuple)) or len(value) != 3 or
          not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
        raise ValueError(f"model.{field}={value!r} must be 3 numbers, one per RGB channel (model.image_mean and "
                         "model.image_std go together)")
    if not all(x > 0 for x in norm[1]):
      raise ValueError(f"model.image_std={norm[1]!r} must be positive")
  if bpe:
    _validate_bpe(m)
  else:
    _validate_words(config, spec)
  if not m.mlp_ratio > 0:
    raise ValueError(f"model.mlp_ratio={m.mlp_ratio!r} must be > 0")
  if m.activation not in ACTIVATIONS:
    raise ValueError(f"model.activation={m.activation!r}; choose one of: {', '.join(ACTIVATIONS)}")


def _validate_bpe(m) -> None:
  _positive(m, "vocab_size")
  if _positive(m, "text_len") < 2:
    raise ValueError(f"model.text_len={m.text_len!r} must be at least 2 for a BPE tokenizer (start and end of text)")
  pool = m.get("text_pool")
  if pool not in BPE_POOLS:
    raise ValueError(f"model.text_pool={pool!r}; a BPE text tower pools at one of: {', '.join(BPE_POOLS)}")
  eos = m.get("eos_id")
  if pool == "eos" and (not isinstance(eos, int) or isinstance(eos, bool) or not 0 <= eos < m.vocab_size):
    raise ValueError(f"model.eos_id={eos!r} must be an id of the vocabulary, in [0, {m.vocab_size}), for "
                     "model.text_pool='eos'")


def _validate_words(config, spec) -> None:
  m = config.model
  if m.get("text_pool") not in (None, "last_nonpad"):
    raise ValueError(f"model.text_pool={m.text_pool!r}; the data set's words pool at 'last_nonpad' (no end-of-text "
                     "token)")
  length, full, longest = text_len(config), dict(spec.feature_shapes)["tokens"][0], longest_caption(spec.name)
  if not isinstance(length, int) or isinstance(length, bool) or not longest <= length <= full:
    raise ValueError(f"model.text_len={length!r} must be an integer in [{longest}, {full}]: at least the longest "
                     f"caption of {spec.name} ({longest} tokens), at most its token length")


def make_clip(config):
  from jaxgen.clip.model import CLIP, CLIPModel
  from jaxgen.nn.transformer import TextEncoder
  from jaxgen.nn.vit import VisionTransformer
  spec = get_dataset_spec(config.data.name)
  m = config.model
  common = dict(mlp_ratio=m.mlp_ratio, activation=m.activation, scan=m.scan)
  if "norm_eps" in m:             # absent from trained runs' configs: the modules' own default, 1e-5
    common["norm_eps"] = m.norm_eps
  if m.get("vision", "vit") == "resnet":
    from jaxgen.nn.clip_resnet import CLIPResNet
    visual = CLIPResNet(tuple(m.vision_layers), m.vision_width, m.vision_heads, output_dim=m.embed_dim)
  else:
    visual = VisionTransformer(m.patch_size, m.vision_width, m.vision_depth, m.vision_heads,
                               output_dim=m.embed_dim, **common)
  if tokenizer_kind(config) == "bpe":
    text = TextEncoder(m.vocab_size, text_len(config), m.text_width, m.text_depth, m.text_heads, pool=m.text_pool,
                       eos_id=m.get("eos_id") if m.text_pool == "eos" else None, **common)
  else:
    text = TextEncoder(vocab_size(spec.name), text_len(config), m.text_width, m.text_depth, m.text_heads,
                       pool="last_nonpad", **common)
  norm = None
  if m.get("image_mean") is not None:
    norm = (tuple(float(x) for x in m.image_mean), tuple(float(x) for x in m.image_std))
  return CLIP(model=CLIPModel(visual, text, m.embed_dim), image_shape=image_shape(config), text_len=text_len(config),
              pixel_norm=norm)
