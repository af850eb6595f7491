"""The CLIP family: the ViT tower, unit-norm embeddings, the temperature, the zero-shot classifier, retrieval
recall and the linear probe, each against a direct computation (tiny configs: function calls only)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.clip_shapes import get_config
from jaxgen import registry
from jaxgen.clip import api
from jaxgen.clip.build import make_clip, validate_clip_config
from jaxgen.clip.loss import MAX_LOGIT_SCALE
from jaxgen.data.builders import shapes as S
from jaxgen.eval import clip_zero_shot as Z
from jaxgen.nn.vit import VisionTransformer


def _layer_norm(x, p, eps=1e-5):
  mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def test_vit_shapes_and_class_token_pooling():
  vit = VisionTransformer(patch_size=4, width=16, depth=1, num_heads=2, output_dim=8)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 12, 3))
  variables = vit.init(jax.random.PRNGKey(1), x)
  p = variables["params"]
  tokens, pooled = vit.apply(variables, x)
  assert tokens.shape == (2, 1 + 2 * 3, 16) and pooled.shape == (2, 8)
  assert set(p["conv1"]) == {"kernel"} and set(p["proj"]) == {"kernel"}          # no biases
  assert p["positional_embedding"].shape == (7, 16) and p["class_embedding"].shape == (16,)
  want = _layer_norm(np.asarray(tokens[:, 0], np.float64), p["ln_post"]) @ np.asarray(p["proj"]["kernel"])
  np.testing.assert_allclose(pooled, want, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="patch_size=5"):
    VisionTransformer(patch_size=5, width=16, depth=1, num_heads=2).init(jax.random.PRNGKey(1), x)


@pytest.fixture(scope="module")
def clip():
  config = get_config("smoke")
  family = make_clip(config)
  data = S.shapes_split_arrays("test", 3)
  batch = {"image": jnp.asarray(data["image"]), "tokens": jnp.asarray(data["tokens"])}
  return family, family.init(jax.random.PRNGKey(0), batch), batch


def test_embeddings_are_unit_norm(clip):
  family, params, batch = clip
  for emb in (family.encode_images(params, batch["image"]), family.encode_text(params, batch["tokens"])):
    assert emb.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, rtol=1e-5)


def test_temperature_starts_at_1_over_0_07_and_is_clipped_at_100(clip):
  family, params, batch = clip
  assert float(params["params"]["logit_scale"]) == pytest.approx(math.log(1 / 0.07), rel=1e-6)
  assert float(family.logit_scale(params)) == pytest.approx(1 / 0.07, rel=1e-5)
  hot = jax.tree_util.tree_map(lambda x: x, params)
  hot["params"]["logit_scale"] = jnp.float32(math.log(250.0))
  assert float(family.logit_scale(hot)) == pytest.approx(MAX_LOGIT_SCALE, rel=1e-5)
  _, metrics = family.loss(hot, batch, None)
  assert float(metrics["logit_scale"]) == pytest.approx(MAX_LOGIT_SCALE, rel=1e-5)   # (its gradient: test_clip_loss)


def test_no_weight_decay_on_biases_gains_class_embedding_and_temperature(clip):
  family, params, _ = clip
  labels = family.param_labels(params)["params"]
  assert labels["logit_scale"] == "no_decay" and labels["image_encoder"]["class_embedding"] == "no_decay"
  assert labels["image_encoder"]["ln_pre"] == {"scale": "no_decay", "bias": "no_decay"}
  assert labels["image_encoder"]["conv1"]["kernel"] == "default" and labels["text_projection"]["kernel"] == "default"


def test_text_len_cuts_only_pads(clip):
  family, params, batch = clip
  config = get_config("smoke")
  config.model.text_len = 14                                 # the longest shapes caption
  short = make_clip(config)
  cut = jax.tree_util.tree_map(lambda x: x, params)
  pos = params["params"]["text_encoder"]["positional_embedding"]
  cut["params"]["text_encoder"]["positional_embedding"] = pos[:14]
  np.testing.assert_allclose(short.encode_text(cut, batch["tokens"]), family.encode_text(params, batch["tokens"]),
                             rtol=1e-5, atol=1e-6)
  config.model.text_len = 13
  with pytest.raises(ValueError, match="text_len=13"):
    validate_clip_config(config)


def test_api_encodes_in_padded_batches_like_the_family(clip):
  family, params, batch = clip
  img = api.encode_images(family, np.asarray(batch["image"]), params, batch_size=2)   # 3 = 2 + 1 padded
  np.testing.assert_allclose(img, family.encode_images(params, batch["image"]), rtol=1e-5, atol=1e-6)
  logits = api.score(family, np.asarray(batch["image"]), ["a small red circle", "a large blue star"], params)
  txt = family.encode_text(params, jnp.asarray(api.tokenize(["a small red circle", "a large blue star"])))
  np.testing.assert_allclose(logits, (1 / 0.07) * np.asarray(img) @ np.asarray(txt).T, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="params="):
    api.encode_images(family, np.asarray(batch["image"]))


def test_zero_shot_classifier_picks_the_argmax_of_a_known_similarity():
  e = np.eye(4)
  prompt_emb = np.stack([e[0], e[1], e[2], 2 * e[3]])       # class 0: e0 and e1; class 1: e2; class 2: e3
  classes = Z.ensemble_classifier(prompt_emb, np.array([0, 0, 1, 2]), 3)
  np.testing.assert_allclose(classes, [[2 ** -0.5, 2 ** -0.5, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], atol=1e-12)
  images = np.array([[1.0, 1.0, 0.0, 0.0], [0.1, 0.0, 3.0, 2.9], [0.0, 0.9, 0.0, 1.0], [1.0, 0.0, 0.0, 0.8]])
  # similarities: [1.41, 0, 0]; [.07, 3, 2.9]; [.64, 0, 1]; [.71, 0, .8]
  np.testing.assert_array_equal(Z.zero_shot_predict(images, classes), [0, 1, 2, 2])
  # the best single prompt instead (prompts normalised: e0, e1, e2, e3): image 3's best prompt is e0 (1 > .8),
  # so class 0, where the ensemble's (e0 + e1) / sqrt 2 scores .71 < .8
  np.testing.assert_array_equal(Z.best_prompt_predict(images, prompt_emb, np.array([0, 0, 1, 2])), [0, 1, 2, 0])
  np.testing.assert_array_equal(Z.best_prompt_predict(np.array([[0.9, 1.0, 0.0, 0.5]]), prompt_emb,
                                                      np.array([0, 1, 1, 2])), [1])
  with pytest.raises(ValueError, match=r"classes \[2\]"):
    Z.ensemble_classifier(prompt_emb[:3], np.array([0, 0, 1]), 3)


def test_retrieval_recall_counts_any_copy_of_the_caption():
  tokens = np.array([[1, 0], [2, 0], [1, 0], [3, 0]])       # images 0 and 2 share a caption
  text = np.eye(3)[[0, 1, 0, 2]]                            # caption embeddings: [1,0]->e0, [2,0]->e1, [3,0]->e2
  image = np.array([[0.9, 0.5, 0.0], [0.0, 0.2, 1.0], [0.1, 0.0, 0.9], [0.0, 0.0, 1.0]])
  out = Z.retrieval_metrics(image, text, tokens, ks=(1, 2))
  # image -> its caption among the 3 distinct ones: 0 hit@1; 1 rank 2; 2 rank 2; 3 hit@1
  assert out["retrieval_i2t_r1"] == 0.5 and out["retrieval_i2t_r2"] == 1.0
  # caption -> images: [1,0] column (.9, 0, .1, 0): image 0 first (hit@1, either copy's image counts);
  # [2,0] (.5, .2, 0, 0): image 0, then image 1 (hit@2); [3,0] (0, 1, .9, 1): image 1 (tied with image 3, the
  # lower index first), then image 3 (hit@2)
  assert out["retrieval_t2i_r1"] == pytest.approx(1 / 3) and out["retrieval_t2i_r2"] == 1.0
  assert out["num_distinct_captions"] == 3


def test_prompts_follow_the_caption_grammar():
  kinds = Z.class_prompts("kind")
  assert len(kinds) == 5 and all(len(p) == 12 for p in kinds) and "a small red circle" in kinds[0]
  assert [len(p) for p in Z.class_prompts("size")] == [30, 30] and len(Z.class_prompts("colour")) == 6
  count = Z.class_prompts("count")
  assert [len(p) for p in count] == [Z.PROMPTS_PER_COUNT] * 3
  for n, prompts in enumerate(count, start=1):
    assert all(sum(p.split().count(s) for s in S.SIZES) == n for p in prompts)
  api.tokenize([p for ps in count for p in ps])              # every prompt is in the vocabulary


def test_linear_probe_separates_separable_features():
  rng = np.random.default_rng(0)
  y = rng.integers(0, 3, 90)
  x = np.eye(3)[y] * 3 + rng.normal(0, 0.3, (90, 3))
  pred = Z.linear_probe(x[:60], y[:60], x[60:], 3, steps=200, learning_rate=0.05)
  assert np.mean(pred == y[60:]) == 1.0


def test_validator_names_the_bad_value():
  for field, value, match in (("model.patch_size", 5, "patch_size=5"), ("model.text_heads", 3, "text_width=16"),
                              ("model.activation", "relu", "activation='relu'"), ("data.name", "digits", "digits")):
    config = get_config("smoke")
    section, leaf = field.split(".")
    config[section][leaf] = value
    with pytest.raises(ValueError, match=match):
      validate_clip_config(config)
  config = get_config("smoke")
  config.eval.probe_steps = 0
  with pytest.raises(ValueError, match="eval.probe_steps=0"):
    registry.validate_config(config)


def test_resnet_tower_attention_pool_and_downsampling():
  """The ResNet option: stage strides 1, 2 (anti-aliased), the attention pool reads the mean token against
  every position (checked against a direct float64 computation from its parameters), and the family trains."""
  from jaxgen.nn.clip_resnet import CLIPResNet
  net = CLIPResNet(stage_sizes=(1, 1), width=8, num_heads=4, output_dim=6)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  variables = jax.jit(net.init)(jax.random.PRNGKey(1), x)
  seq, pooled = jax.jit(net.apply)(variables, x)
  assert seq.shape == (2, 1 + 4 * 4, 64) and pooled.shape == (2, 6)
  a = jax.tree.map(lambda v: np.asarray(v, np.float64), variables["params"]["attnpool"]["attn"])
  s = np.asarray(seq, np.float64)
  q = np.einsum("bc,chd->bhd", s[:, 0], a["query"]["kernel"]) + a["query"]["bias"]
  k = np.einsum("blc,chd->blhd", s, a["key"]["kernel"]) + a["key"]["bias"]
  v = np.einsum("blc,chd->blhd", s, a["value"]["kernel"]) + a["value"]["bias"]
  logits = np.einsum("bhd,blhd->bhl", q, k) / np.sqrt(q.shape[-1])
  w = np.exp(logits - logits.max(-1, keepdims=True))
  w /= w.sum(-1, keepdims=True)
  want = np.einsum("bhl,blhd,hdo->bo", w, v, a["out"]["kernel"]) + a["out"]["bias"]
  np.testing.assert_allclose(pooled, want, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match=r"stage_sizes=\(1, 1, 1, 1\) .* downsample by 8"):
    CLIPResNet(stage_sizes=(1, 1, 1, 1), width=8, num_heads=4, output_dim=6).init(
        jax.random.PRNGKey(1), jnp.zeros((1, 12, 12, 3)))
  config = get_config("smoke")
  config.model.update(vision="resnet", vision_layers=(1, 1), vision_width=8, vision_heads=4)
  validate_clip_config(config)
  family = make_clip(config)
  data = S.shapes_split_arrays("test", 4)
  batch = {"image": jnp.asarray(data["image"]), "tokens": jnp.asarray(data["tokens"])}
  params = jax.jit(family.init)(jax.random.PRNGKey(0), batch)
  grads = jax.jit(jax.grad(lambda p: family.loss(p, batch, None)[0]))(params)
  assert float(jnp.abs(grads["params"]["image_encoder"]["stem_conv1"]["kernel"]).max()) > 0
  config.model.vision_layers = (1, 0)
  with pytest.raises(ValueError, match=r"model.vision_layers=\(1, 0\) must be"):
    validate_clip_config(config)
  config.model.vision = "vgg"
  with pytest.raises(ValueError, match=r"model.vision='vgg'; choose one of: vit, resnet"):
    validate_clip_config(config)


def test_a_trained_run_keeps_its_word_vocabulary(tmp_path):
  """The words a run's token ids mean are saved with it at its start and read back from there."""
  from jaxgen.clip.tokenizer import TOKENIZER_DIR, WORDS_FILE, WordTokenizer, run_tokenizer, save_run_files
  config = get_config("smoke")
  save_run_files(config, str(tmp_path))
  path = tmp_path / TOKENIZER_DIR / WORDS_FILE
  saved = WordTokenizer.from_file(str(path))
  assert saved.vocab == S.VOCAB and saved.max_tokens == S.MAX_TOKENS
  caption = "a small red circle"
  np.testing.assert_array_equal(run_tokenizer(config, str(tmp_path))([caption]), [S.tokenize(caption)])
  # the run's file is what counts: a vocabulary with two words swapped gives their ids swapped
  vocab = list(S.VOCAB)
  i, j = vocab.index("red"), vocab.index("circle")
  vocab[i], vocab[j] = vocab[j], vocab[i]
  WordTokenizer(vocab, S.MAX_TOKENS).save(str(path))
  ids = run_tokenizer(config, str(tmp_path))([caption])[0]
  assert list(ids[:4]) == [S.VOCAB.index("a"), S.VOCAB.index("small"), j, i]
  save_run_files(config, str(tmp_path))                       # written once: a restart keeps the run's file
  assert WordTokenizer.from_file(str(path)).vocab == tuple(vocab)
