"""Latent diffusion's second stage and its text conditioning: the U-Net's cross-attention block against a direct
float64 softmax(Q K^T / sqrt(d)) V from its own parameters; a text-conditional DDPM's guidance, caption dropout,
null caption and grid captions against direct computations; latents given by a cache train the same loss as
latents encoded in the step; the text and second-stage settings are validated naming the bad value. The
experiments/ldm.py smoke preset end to end (through the trainer, resumed) is in test_ldm_autoencoder.py, which
holds the one first-stage run these tests share."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import registry
from jaxgen.diffusion import schedules
from jaxgen.diffusion.codecs import ImageCodec
from jaxgen.diffusion.ddpm import DDPM
from jaxgen.nn.unet import UNet

VOCAB = 32


def _text_unet(**kw):
  return UNet(ch=8, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(8,), num_groups=4, dropout=0.0,
              text_vocab=VOCAB, text_max_len=24, text_width=16, text_depth=1, text_heads=2, cross_attn_heads=2, **kw)


def _perturb(params, scale=0.3):
  """Every parameter moved by seeded noise (numpy: no compile), so zero-initialised projections do not hide the
  conditioning."""
  rng = np.random.default_rng(5)
  return jax.tree.map(lambda v: jnp.asarray(np.asarray(v) + scale * rng.normal(size=np.shape(v)), jnp.float32), params)


def _tokens(*captions):
  from jaxgen.data.builders.shapes import tokenize
  return jnp.stack([tokenize(c) if c else jnp.zeros(24, jnp.int32) for c in captions])


def test_cross_attention_block_is_softmax_qk_v_of_its_parameters():
  """CrossAttention(x, context, tokens) = x + W_o softmax(Q K^T / sqrt(d)) V + b_o, per head, pads excluded,
  computed here in float64 from the module's own parameters."""
  from jaxgen.nn.transformer import CrossAttention
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 3, 2, 8)), jnp.float32)
  context = jnp.asarray(rng.normal(size=(2, 5, 6)), jnp.float32)
  tokens = jnp.array([[4, 9, 2, 0, 0], [7, 1, 1, 3, 8]])
  module = CrossAttention(num_heads=2)
  params = _perturb(module.init(jax.random.PRNGKey(0), x, context, tokens))
  out = np.asarray(module.apply(params, x, context, tokens), np.float64)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
  xf = np.asarray(x, np.float64).reshape(2, 6, 8)
  mu, var = xf.mean(-1, keepdims=True), xf.var(-1, keepdims=True)
  h = (xf - mu) / np.sqrt(var + 1e-5) * p["norm"]["scale"] + p["norm"]["bias"]
  a = p["attn"]
  c = np.asarray(context, np.float64)
  q = np.einsum("blc,chd->blhd", h, a["query"]["kernel"]) + a["query"]["bias"]
  k = np.einsum("blc,chd->blhd", c, a["key"]["kernel"]) + a["key"]["bias"]
  v = np.einsum("blc,chd->blhd", c, a["value"]["kernel"]) + a["value"]["bias"]
  want = np.zeros_like(q)
  for b in range(2):
    keep = np.asarray(tokens[b]) != 0
    for head in range(2):
      logits = q[b, :, head] @ k[b, keep, head].T / math.sqrt(q.shape[-1])
      w = np.exp(logits - logits.max(-1, keepdims=True))
      want[b, :, head] = (w / w.sum(-1, keepdims=True)) @ v[b, keep, head]
  y = np.einsum("blhd,hdc->blc", want, a["out"]["kernel"]) + a["out"]["bias"]
  np.testing.assert_allclose(out, (xf + y).reshape(2, 3, 2, 8), atol=2e-5, rtol=2e-5)


@pytest.fixture(scope="module")
def text_ddpm():
  ddpm = DDPM(network=_text_unet(), schedule=schedules.make_schedule("linear", 20, beta_start=1e-3, beta_end=0.2),
              codec=ImageCodec((8, 8, 3)), label_dropout=0.25,
              grid_tokens=tuple(tuple(int(i) for i in t) for t in _tokens("a small red circle", "a large blue star")))
  params = _perturb(jax.jit(ddpm.init)(jax.random.PRNGKey(0)))
  net = jax.jit(lambda p, x, t, tok: ddpm.network.apply({"params": p}, x, t, {"tokens": tok}, train=False))
  return ddpm, params, net


def test_the_text_unet_reads_the_caption_and_the_null_caption_is_unconditional(text_ddpm):
  ddpm, params, net = text_ddpm
  assert ddpm.cond_features == ("tokens",) and "text_encoder" in params
  assert {"down_0_attn_0_cross", "mid_attn_1_cross", "up_0_attn_1_cross"} <= set(params)
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 8, 8, 3))
  t = jnp.array([3, 10, 19, 7])
  tok = _tokens("a small red circle", "a small red circle above a large blue square", "", "a large cyan star")
  out = net(params, x, t, tok)
  # another caption changes the prediction; a pad position's id cannot (pads are masked), so 0-padding is exact
  other = net(params, x, t, tok.at[0, 3].set(22))
  assert float(jnp.abs(other[0] - out[0]).max()) > 1e-3
  np.testing.assert_allclose(other[1:], out[1:], atol=0)
  # the null caption is the network without its cross-attention blocks (they leave their input unchanged)
  no_cross = jax.tree.map(lambda a: a, params)
  for name in [k for k in params if k.endswith("_cross")]:
    no_cross[name] = dict(params[name], attn=dict(params[name]["attn"], out=jax.tree.map(
        jnp.zeros_like, params[name]["attn"]["out"])))                # zero output projection: identity block
  np.testing.assert_allclose(out[2], net(no_cross, x, t, tok)[2], atol=1e-5)


def test_guidance_and_caption_dropout_with_tokens(text_ddpm):
  ddpm, params, net = text_ddpm
  x = jax.random.normal(jax.random.PRNGKey(2), (2, 8, 8, 3))
  t = jnp.array([4, 15])
  tok = _tokens("a small red circle", "a large green triangle to the left of a small cyan star")
  # the conditional and the null pass, as one batch of 4 through the network
  both = net(params, jnp.concatenate([x, x]), jnp.concatenate([t, t]), jnp.concatenate([tok, jnp.zeros_like(tok)]))
  eps_c, eps_0 = both[:2], both[2:]
  w = 3.0
  guided = jax.jit(lambda p: ddpm.model_fn(p, {"tokens": tok}, guidance=w)(x, t)[0])
  np.testing.assert_allclose(guided(params), (1 + w) * eps_c - w * eps_0, rtol=1e-4, atol=1e-5)
  # caption dropout: each example's whole caption becomes the null (all pad) caption at the rate label_dropout
  many = jnp.tile(tok[:1], (8000, 1))
  dropped = ddpm._cond({"tokens": many}, jax.random.PRNGKey(3), train=True)["tokens"]
  null = np.all(np.asarray(dropped) == 0, axis=1)
  kept = np.all(np.asarray(dropped) == np.asarray(tok[:1]), axis=1)
  assert np.all(null | kept) and abs(null.mean() - 0.25) < 0.02
  # sample grids: one row per grid caption
  grid = ddpm.default_cond(8)["tokens"]
  np.testing.assert_array_equal(grid[:4], np.tile(np.asarray(ddpm.grid_tokens[0]), (4, 1)))
  np.testing.assert_array_equal(grid[4:], np.tile(np.asarray(ddpm.grid_tokens[1]), (4, 1)))


def test_a_text_ddpm_trains_and_samples_with_captions(text_ddpm):
  ddpm, params, _ = text_ddpm
  batch = {"image": np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8),
           "tokens": np.asarray(_tokens("a small red circle", "a large blue star", "a small green square", ""))}
  (loss, _), grads = jax.jit(jax.value_and_grad(ddpm.loss, has_aux=True))(params, batch, jax.random.PRNGKey(0))
  assert np.isfinite(float(loss))
  assert float(jnp.abs(grads["text_encoder"]["token_embedding"]["embedding"]).max()) > 0   # trained jointly
  samples = jax.jit(lambda p, c: ddpm.sample(p, jax.random.PRNGKey(1), 2, c, sampler="ddim", steps=2, guidance=3.0))(
      params, {"tokens": _tokens("a small red circle", "")})
  assert samples.shape == (2, 8, 8, 3) and float(jnp.abs(samples).max()) <= 1.0


def _text_config(**model):
  from experiments.ddpm_cifar import get_config
  c = get_config("quick_shapes")
  c.model.update(text_vocab=32, text_max_len=24, text_width=32, text_depth=1, text_heads=2, cross_attn_heads=2)
  c.model.update(**model)
  return c


@pytest.mark.parametrize("change, match", [
    (dict(text_vocab=10), r"model.text_vocab=10 is smaller than shapes's vocabulary of 24 tokens"),
    (dict(text_max_len=16), r"model.text_max_len=16 must be shapes's caption length, 24"),
    (dict(text_width=30, text_heads=4), r"model.text_width=30 is not divisible by model.text_heads=4"),
    (dict(cross_attn_heads=0), r"model.cross_attn_heads=0 must be an int >= 1"),
])
def test_text_settings_are_validated(change, match):
  registry.validate_config(_text_config())
  with pytest.raises(ValueError, match=match):
    registry.validate_config(_text_config(**change))


def test_text_conditioning_needs_captions_and_a_unet():
  from experiments.ddpm_cifar import get_config
  c = get_config("smoke")
  c.model.text_vocab = 32
  with pytest.raises(ValueError, match=r"model.text_vocab=32 but data.name='digits' has no captions"):
    registry.validate_config(c)
  c = get_config("quick_shapes")
  c.diffusion.guidance = 2.0
  with pytest.raises(ValueError, match=r"guidance=2.0 needs a conditional model \(model.num_classes > 0, "
                                       r"model.text_vocab > 0, model.embed_dim > 0, or a prior_transformer's"):
    registry.validate_config(c)


def test_the_ldm_presets_are_validated_before_any_work():
  from experiments import ldm
  c = ldm.get_config("quick_text")
  with pytest.raises(ValueError, match=r"codec.workdir='' holds no finished run"):
    registry.validate_config(c)
  assert c.model.text_vocab == 24 and c.diffusion.guidance == 3.0 and c.codec.scale == "auto"
