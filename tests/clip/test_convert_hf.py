"""The Hugging Face CLIP converter and the BPE tokenizer are exact: a tiny transformers CLIPModel, filled with seeded
weights (tests/fixtures/seeded.py, regenerated here with numpy and written as safetensors with numpy; no weights
committed), gives the image and text embeddings and logits saved by tests/fixtures/make_clip_hf_fixture.py through
the real command (in-process), load_clip and jaxgen.clip's api, captions tokenized by the run's own BPE; the BPE
gives transformers' CLIPTokenizer ids (which the fixture script checked against OpenAI's BPE algorithm); what
cannot be mapped is refused naming the value."""
import json
import os
import shutil
import sys

import jax
import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
sys.path.insert(0, FIXTURES)
from seeded import seeded_state_dict  # noqa: E402

from jaxgen.clip import api  # noqa: E402
from jaxgen.clip import convert_hf as ch  # noqa: E402
from jaxgen.clip.tokenizer import BPETokenizer, run_tokenizer, WordTokenizer  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

HF_DIR = os.path.join(FIXTURES, "clip_hf")
TINY = np.load(os.path.join(FIXTURES, "clip_hf_fixture.npz"))
TINY_CONFIG = json.load(open(os.path.join(HF_DIR, "config.json")))
TINY_SHAPES = {k: tuple(s) for k, s in json.loads(str(TINY["keys"]))}
CAPTIONS = [str(c) for c in TINY["captions"]]
CONTEXT = TINY_CONFIG["text_config"]["max_position_embeddings"]
B32 = json.load(open(os.path.join(FIXTURES, "clip_hf_b32_keys.json")))
B32_SHAPES = {k: tuple(s) for k, s in B32["keys"]}


def input_images():
  """make_clip_hf_fixture.input_images: the same numpy call."""
  x = (np.random.default_rng(1).random((3, 32, 32, 3)) * 2.0 - 1.0).astype(np.float32)
  assert np.isclose(x.astype(np.float64).sum(), float(TINY["input_sum"]), rtol=0, atol=1e-6), "numpy's stream changed"
  return x


def state_dict():
  sd = seeded_state_dict({k: s for k, s in TINY_SHAPES.items() if k != "logit_scale"}, int(TINY["seed"]))
  sd["logit_scale"] = np.array(TINY["logit_scale"], np.float32)
  return sd


def write_source(directory, *, config=None, weights=True):
  """A Hub-like CLIPModel checkout: config.json, model.safetensors (the seeded tiny weights), vocab.json and
  merges.txt."""
  directory.mkdir(parents=True, exist_ok=True)
  (directory / "config.json").write_text(json.dumps(TINY_CONFIG if config is None else config))
  for name in ("vocab.json", "merges.txt"):
    shutil.copyfile(os.path.join(HF_DIR, name), directory / name)
  if weights:
    save_file(state_dict(), str(directory / ch.WEIGHTS_FILE), metadata={"format": "pt"})
  return directory


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """The tiny model converted by the command's entry point and restored by load_clip."""
  root = tmp_path_factory.mktemp("convert_hf")
  src = write_source(root / "clip-tiny")
  dst = root / "run"
  import contextlib
  import io
  err = io.StringIO()
  with contextlib.redirect_stderr(err):
    assert ch.main([str(src), str(dst)]) == 0
  lines = err.getvalue().splitlines()       # a progress line as each stage starts, on stderr
  assert [line.split(" | ")[0] for line in lines] == ["convert 1/3", "convert 2/3", "convert 3/3"], lines
  assert "| reading " in lines[0] and "| writing the tokenizer and the step-0 checkpoint to " in lines[2], lines
  return src, dst, api.load_clip(str(dst))


def test_tokenizer_gives_the_reference_ids():
  tok = BPETokenizer.from_dir(HF_DIR, context_length=CONTEXT)
  ids = tok(CAPTIONS)
  np.testing.assert_array_equal(ids, TINY["input_ids"])
  eos, bos = tok.eos_id, tok.bos_id
  assert (bos, eos, tok.pad_id) == (624, 625, 625) and ids.dtype == np.int32 and ids.shape == (len(CAPTIONS), CONTEXT)
  assert ids[5, -1] == eos and (ids[:, 0] == bos).all()              # truncated: end of text kept
  assert tok.decode(ids[1]) == "a photo of a dog !"
  np.testing.assert_array_equal(tok("a photo of a cat")[0], ids[0])
  with pytest.raises(ValueError, match="context_length=1 must be an integer >= 2"):
    BPETokenizer.from_dir(HF_DIR, context_length=1)
  with pytest.raises(FileNotFoundError, match="nope.json does not exist"):
    BPETokenizer(os.path.join(HF_DIR, "nope.json"), os.path.join(HF_DIR, "merges.txt"))


def test_converted_model_reproduces_transformers(converted):
  _, _, run = converted
  images = input_images()
  img = api.encode_images(run, images)
  txt = api.encode_text(run, CAPTIONS)                      # the run's BPE tokenizes the strings
  logits = api.score(run, images, CAPTIONS)
  errors = {}
  for name, have, want in (("image_embeds", img, TINY["image_embeds"]), ("text_embeds", txt, TINY["text_embeds"]),
                           ("logits_per_image", logits, TINY["logits_per_image"])):
    scale = np.abs(want).max()
    errors[name] = np.abs(have - want).max() / scale
    np.testing.assert_allclose(have, want, rtol=1e-5, atol=2e-6 * scale, err_msg=name)
  print("max error / max |reference|: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
  np.testing.assert_allclose(api.encode_text(run, TINY["input_ids"]), txt, rtol=0, atol=0)
  # uint8 images are normalised as transformers' CLIPImageProcessor does (OpenAI's mean and std by default).
  u8 = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)     # the shape compiled above
  x = ((u8 / 255.0 - np.array(ch.OPENAI_MEAN)) / np.array(ch.OPENAI_STD)).astype(np.float32)
  np.testing.assert_allclose(api.encode_images(run, u8), api.encode_images(run, x), rtol=1e-5, atol=1e-6)


def test_converted_run_directory(converted):
  src, dst, run = converted
  assert run.step == 0 and run.experiment == "experiments.clip_shapes" and run.preset == "paper"
  jax.tree.map(np.testing.assert_array_equal, run.state.params, run.state.ema_params)
  m = run.config.model
  assert (m.patch_size, m.image_size, m.vision_width, m.vision_depth, m.vision_heads) == (8, 32, 32, 2, 2)
  assert (m.text_width, m.text_depth, m.text_heads, m.text_len, m.embed_dim, m.vocab_size) == (32, 2, 2, 16, 16, 626)
  assert (m.activation, m.norm_eps, m.mlp_ratio, m.tokenizer, m.text_pool, m.eos_id) == (
      "quick_gelu", 1e-5, 4.0, "bpe", "eos", 625)
  assert (tuple(m.image_mean), tuple(m.image_std)) == (ch.OPENAI_MEAN, ch.OPENAI_STD)
  assert run.family.pixel_norm == (ch.OPENAI_MEAN, ch.OPENAI_STD)
  assert isinstance(run_tokenizer(run), BPETokenizer)
  assert sorted(os.listdir(dst / "tokenizer")) == ["merges.txt", "vocab.json"]
  conv = json.load(open(dst / "config.json"))["converted_from"]
  assert conv["source"] == str(src) and conv["weights"] == str(src / ch.WEIGHTS_FILE)
  assert conv["num_params"] == sum(int(np.prod(s)) for s in TINY_SHAPES.values()) == 79_297
  with pytest.raises(FileExistsError, match="already holds a run"):
    ch.convert(str(src), str(dst))


def test_trained_runs_keep_the_shapes_words():
  from experiments.clip_shapes import get_config
  assert isinstance(run_tokenizer(get_config("smoke"), workdir="/nonexistent"), WordTokenizer)
  np.testing.assert_array_equal(WordTokenizer()(["a small red circle"]), api.tokenize(["a small red circle"]))


def test_the_converter_and_the_experiment_start_from_the_library_clip_config():
  from experiments.clip_shapes import get_config
  from jaxgen.clip.config import clip_config
  assert clip_config("paper").to_dict() == get_config("paper").to_dict()
  config = ch.run_config(TINY_CONFIG)
  assert config.family == "clip" and config.preset == "paper" and config.data.name == "shapes" and not config.evals
  assert config.optim.to_dict() == clip_config("paper").optim.to_dict()
  # preprocessor_config.json's normalisation, when the source has one.
  config = ch.run_config(TINY_CONFIG, preprocessor={"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25] * 3})
  assert (tuple(config.model.image_mean), tuple(config.model.image_std)) == ((0.5,) * 3, (0.25,) * 3)
  assert ch.pixel_norm_from_hf({"do_normalize": False}) == dict(image_mean=(0.0,) * 3, image_std=(1.0,) * 3)
  with pytest.raises(ValueError, match=r"preprocessor_config.json: image_std=\[0.5\] cannot be converted; allowed: 3"):
    ch.pixel_norm_from_hf({"image_std": [0.5]})


def test_full_size_keys_map_onto_vit_b32():
  """transformers' default CLIPConfig, OpenAI's ViT-B/32: every one of its 398 tensors (151M parameters, no
  weights) maps onto the family that its converted config builds."""
  config = {"text_config": {}, "vision_config": {}}
  model = ch.model_config_from_hf(config)
  assert {k: model[k] for k in ("patch_size", "image_size", "vision_width", "vision_depth", "vision_heads",
                                "text_width", "text_depth", "text_heads", "text_len", "embed_dim", "vocab_size",
                                "mlp_ratio", "activation", "text_pool", "eos_id")} == dict(
      patch_size=32, image_size=224, vision_width=768, vision_depth=12, vision_heads=12, text_width=512,
      text_depth=12, text_heads=8, text_len=77, embed_dim=512, vocab_size=49408, mlp_ratio=4.0,
      activation="quick_gelu", text_pool="eos", eos_id=49407)
  shapes = ch.converted_shapes(B32_SHAPES, config)
  assert sum(int(np.prod(s)) for s in shapes.values()) == B32["num_params"] == 151_277_313
  block = ("params", "image_encoder", "transformer", "block_11")
  assert shapes[block + ("attn", "query", "kernel")] == (768, 12, 64)
  assert shapes[block + ("attn", "out", "kernel")] == (12, 64, 768)
  assert shapes[("params", "image_encoder", "conv1", "kernel")] == (32, 32, 3, 768)
  assert shapes[("params", "text_encoder", "token_embedding", "embedding")] == (49408, 512)


def test_defaults_match_the_installed_transformers():
  assert {k: ch.TEXT_DEFAULTS[k] for k in B32["text_defaults"]} == B32["text_defaults"]
  assert {k: ch.VISION_DEFAULTS[k] for k in B32["vision_defaults"]} == B32["vision_defaults"]
  assert ch.CLIP_DEFAULTS["projection_dim"] == B32["projection_dim"]


def test_legacy_eos_token_id_pools_at_the_largest_id():
  config = json.loads(json.dumps(TINY_CONFIG))
  config["text_config"]["eos_token_id"] = 2                        # OpenAI's original configs on the Hub
  model = ch.model_config_from_hf(config)
  assert model["text_pool"] == "argmax" and "eos_id" not in model
  # The tiny vocabulary's <|endoftext|> is its largest id, so both rules pool at the same position.
  from jaxgen.nn.transformer import pool_index
  ids = TINY["input_ids"]
  np.testing.assert_array_equal(pool_index(ids, "argmax"), pool_index(ids, "eos", 625))
  np.testing.assert_array_equal(pool_index(ids, "eos", 625), (ids == 625).argmax(-1))


def _with(config, dotted, value):
  config = json.loads(json.dumps(config))
  node = config
  *parents, leaf = dotted.split(".")
  for p in parents:
    node = node[p]
  node[leaf] = value
  return config


@pytest.mark.parametrize("field, value, allowed", [
    ("vision_config.hidden_act", "gelu_new", "allowed: 'quick_gelu', 'gelu'"),
    ("text_config.hidden_act", "gelu", "allowed: the vision tower's, 'quick_gelu'"),
    ("vision_config.model_type", "clip_vision_resnet", "allowed: 'clip_vision_model' (a ViT"),
    ("model_type", "siglip", "allowed: 'clip'"),
    ("vision_config.patch_size", 7, "allowed: a divisor of image_size=32"),
    ("text_config.num_attention_heads", 3, "allowed: a divisor of hidden_size=32"),
    ("text_config.intermediate_size", 64, "allowed: 128, the vision tower's ratio 4"),
    ("text_config.layer_norm_eps", 1e-6, "allowed: the vision tower's, 1e-05"),
    ("vision_config.num_channels", 1, "allowed: 3"),
    ("text_config.eos_token_id", 9999, "allowed: 2 (transformers' legacy value"),
])
def test_unmappable_configs_are_refused(field, value, allowed):
  with pytest.raises(ValueError) as info:
    ch.model_config_from_hf(_with(TINY_CONFIG, field, value))
  assert f"config.json: {field}={value!r} cannot be converted to jaxgen's CLIP" in str(info.value)
  assert allowed in str(info.value)


def test_bad_sources_are_refused_naming_the_problem(tmp_path, capsys):
  # A bad config is refused before the weights are read, and the command says so in one line.
  src = write_source(tmp_path / "act", config=_with(TINY_CONFIG, "vision_config.hidden_act", "relu"), weights=False)
  (src / ch.WEIGHTS_FILE).write_bytes(b"not read")
  assert ch.main([str(src), str(tmp_path / "run")]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: config.json: vision_config.hidden_act='relu' cannot be converted") and \
      not (tmp_path / "run").exists()
  # The pooling rule must find <|endoftext|>: legacy argmax needs it to be the largest id.
  src = write_source(tmp_path / "legacy", config=_with(_with(TINY_CONFIG, "text_config.eos_token_id", 2),
                                                      "text_config.vocab_size", 700), weights=False)
  (src / ch.WEIGHTS_FILE).write_bytes(b"not read")
  vocab = json.load(open(src / "vocab.json"))
  (src / "vocab.json").write_text(json.dumps(dict(vocab, **{"<|added|>": 626})))   # an id above <|endoftext|>
  with pytest.raises(ValueError, match="eos_token_id=2 pools at the largest id, but <\\|endoftext\\|> is id 625"):
    ch.convert(str(src), str(tmp_path / "run"))
  # Missing files name the path; the PyTorch pickle is refused.
  with pytest.raises(FileNotFoundError, match="model.safetensors does not exist"):
    ch.convert(str(write_source(tmp_path / "none", weights=False)), str(tmp_path / "run"))
  (tmp_path / "none" / ch.PICKLE_FILE).write_bytes(b"\x80\x02")
  with pytest.raises(ValueError, match=r"pytorch_model\.bin is a PyTorch pickle"):
    ch.convert(str(tmp_path / "none"), str(tmp_path / "run"))
  (tmp_path / "none" / "merges.txt").unlink()
  (tmp_path / "none" / ch.WEIGHTS_FILE).write_bytes(b"")
  with pytest.raises(FileNotFoundError, match="merges.txt does not exist"):
    ch.convert(str(tmp_path / "none"), str(tmp_path / "run"))
  assert ch.main([str(tmp_path)]) == 2 and "usage:" in capsys.readouterr().err


def test_state_dict_that_does_not_fit_is_named():
  from jaxgen.clip.convert_hf import _map, param_target
  want = {}
  for key, shape in TINY_SHAPES.items():
    path, op = param_target(key)
    want[path] = ch._transform(np.zeros(shape), op, key.rpartition(".")[2], None).shape
  # the attention kernels' jaxgen shapes (heads split off)
  for path in list(want):
    if path[-2] in ("query", "key", "value"):
      want[path] = (32, 2, 16) if path[-1] == "kernel" else (2, 16)
    elif path[-2] == "out" and path[-1] == "kernel":
      want[path] = (2, 16, 32)
  views = {k: np.zeros(s, np.float32) for k, s in TINY_SHAPES.items()}
  assert set(_map(views, want)) == set(want)
  views["text_model.embeddings.position_ids"] = np.zeros((1, 16))          # a buffer: skipped
  views["vision_model.head.weight"] = np.zeros((4, 4))                     # no place in jaxgen's CLIP
  del views["text_projection.weight"]
  views["vision_model.encoder.layers.2.mlp.fc1.weight"] = np.zeros((128, 32))   # a third layer
  views["text_model.encoder.layers.0.mlp.fc2.weight"] = np.zeros((32, 64))
  with pytest.raises(ValueError) as info:
    _map(views, want)
  message = str(info.value)
  assert "1 unknown keys: vision_model.head.weight" in message
  assert "1 missing parameters: params/text_projection/kernel" in message
  assert "1 unexpected keys: vision_model.encoder.layers.2.mlp.fc1.weight" in message
  assert "text_model.encoder.layers.0.mlp.fc2.weight (32, 64) -> params/text_encoder/transformer/block_0/mlp_out/" \
      "kernel needs (128, 32)" in message


def test_help_prints_the_usage_and_exits_0():
  import subprocess
  proc = subprocess.run([sys.executable, "-m", "jaxgen.clip.convert_hf", "--help"], capture_output=True, text=True,
                        timeout=60)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.startswith("usage: python -m jaxgen.clip.convert_hf SRC_DIR DST")
  assert "merges.txt" in proc.stdout and "pre_layrnorm" in proc.stdout and not proc.stderr.strip()
