"""The shared transformer: attention against a float64 numpy softmax(Q K^T / sqrt(d)) V with causal and padding
masks, causality of the text encoder, its two end-of-text pooling rules, and cross-attention from feature maps
(shape, pads without effect)."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn.transformer import (CrossAttention, MultiHeadAttention, TextEncoder, TransformerBlock, activation_fn,
                                   padding_mask, pool_index)


def _perturb(params, seed=7, scale=0.3):
  """Every parameter moved by noise, so zero-initialised projections do not hide the attention."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  return jax.tree.unflatten(tree, [v + scale * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys)])


def _np_attention(p, x, context, mask, num_heads):
  """float64 oracle of MultiHeadAttention: per head softmax(Q K^T / sqrt(d)) V, masked keys excluded, a query
  with no key gets zero; then the output projection."""
  f = lambda a: np.asarray(a, np.float64)   # noqa: E731
  x, context = f(x), f(context)
  b, lq, _ = x.shape
  lk = context.shape[1]
  proj = lambda name, h: np.einsum("blc,chd->blhd", h, f(p[name]["kernel"])) + f(p[name]["bias"])   # noqa: E731
  q, k, v = proj("query", x), proj("key", context), proj("value", context)
  d = q.shape[-1]
  mask = np.ones((b, lq, lk), bool) if mask is None else np.broadcast_to(np.asarray(mask), (b, lq, lk))
  out = np.zeros_like(q)
  for i in range(b):
    for h in range(num_heads):
      for t in range(lq):
        keep = mask[i, t]
        if not keep.any():         # no key to attend: the whole output row is 0
          continue
        logits = k[i, keep, h] @ q[i, t, h] / math.sqrt(d)
        w = np.exp(logits - logits.max())
        out[i, t, h] = (w / w.sum()) @ v[i, keep, h]
  y = np.einsum("blhd,hdc->blc", out, f(p["out"]["kernel"])) + f(p["out"]["bias"])
  return np.where(mask.any(-1)[..., None], y, 0.0)


@pytest.mark.parametrize("case", ["self", "causal", "cross_padding", "self_mask_and_causal"])
def test_attention_equals_numpy_softmax(case):
  rng = np.random.default_rng(0)
  b, lq, c, heads = 3, 5, 8, 2
  x = rng.normal(size=(b, lq, c)).astype(np.float32)
  context, mask, causal = None, None, False
  if case == "causal":
    causal = True
  elif case == "cross_padding":
    context = rng.normal(size=(b, 7, 6)).astype(np.float32)
    tokens = np.array([[3, 4, 5, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 2], [0, 0, 0, 0, 0, 0, 0]])   # last: all pad
    mask = np.asarray(padding_mask(jnp.asarray(tokens)))
  elif case == "self_mask_and_causal":
    mask, causal = rng.random((b, lq, lq)) < 0.7, True
  module = MultiHeadAttention(heads)
  params = module.init(jax.random.PRNGKey(0), x, context)["params"]
  got = module.apply({"params": params}, x, context, mask=mask, causal=causal)
  full = None if mask is None else np.broadcast_to(mask, (b, lq, lq if context is None else 7))
  if causal:
    tri = np.tril(np.ones((lq, lq), bool))[None]
    full = tri if full is None else full & tri
  want = _np_attention(params, x, x if context is None else context, full, heads)
  np.testing.assert_allclose(np.asarray(got, np.float64), want, atol=2e-5, rtol=1e-5)
  if case == "cross_padding":   # the all-pad caption: no key to attend, output 0 (not the output bias)
    assert float(np.abs(params["out"]["bias"]).max()) == 0 and float(np.abs(got[2]).max()) == 0
    params = _perturb(params)
    got = module.apply({"params": params}, x, context, mask=mask)
    np.testing.assert_array_equal(got[2], 0.0)
    np.testing.assert_allclose(np.asarray(got[:2], np.float64), _np_attention(params, x, context, full, heads)[:2],
                               atol=2e-5, rtol=1e-5)


def test_bad_mask_and_width_are_named():
  x = jnp.zeros((2, 4, 6))
  with pytest.raises(ValueError, match="num_heads=4"):
    MultiHeadAttention(4).init(jax.random.PRNGKey(0), x)
  with pytest.raises(ValueError, match=r"\(2, 4\)"):
    MultiHeadAttention(2).init(jax.random.PRNGKey(0), x, mask=jnp.ones((2, 4), bool))


def test_activations_equal_their_formulas():
  x = np.linspace(-4, 4, 41)
  np.testing.assert_allclose(activation_fn("quick_gelu")(jnp.asarray(x, jnp.float32)), x / (1 + np.exp(-1.702 * x)),
                             atol=1e-6)
  exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
  np.testing.assert_allclose(activation_fn("gelu")(jnp.asarray(x, jnp.float32)), exact, atol=1e-6)
  with pytest.raises(ValueError, match="'relu'"):
    activation_fn("relu")


def _encoder(pool="argmax", **kw):
  return TextEncoder(vocab_size=50, max_len=8, width=16, depth=2, num_heads=2, pool=pool, **kw)


def test_text_encoder_is_causal():
  tokens = jnp.array([[5, 9, 3, 7, 2, 11, 4, 6]])
  enc = _encoder(activation="quick_gelu")
  params = enc.init(jax.random.PRNGKey(0), tokens)
  apply = jax.jit(enc.apply)                      # one compile for the 8 calls (op by op costs seconds each)
  feats, _ = apply(params, tokens)
  for i in range(7):
    changed = tokens.at[:, i + 1:].set((tokens[:, i + 1:] + 13) % 50)
    other, _ = apply(params, changed)
    np.testing.assert_allclose(other[:, :i + 1], feats[:, :i + 1], atol=1e-6)
    assert float(jnp.abs(other[:, i + 1:] - feats[:, i + 1:]).min()) > 1e-4   # later positions do see them


def test_pool_rules_pick_the_end_of_text():
  # OpenAI CLIP: start 49406 ... end 49407 (the largest id), then pads.
  clip_tokens = jnp.array([[49406, 320, 1929, 49407, 0, 0], [49406, 49407, 0, 0, 0, 0]])
  np.testing.assert_array_equal(pool_index(clip_tokens, "argmax"), [3, 1])
  # The shapes words: no EOT token, 0-padded; the largest word id is not at the end.
  words = jnp.array([[1, 30, 12, 0, 0, 0], [4, 2, 3, 8, 9, 0], [7, 7, 7, 7, 7, 7], [0, 0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(pool_index(words, "last_nonpad"), [2, 4, 5, 0])
  np.testing.assert_array_equal(pool_index(words, "argmax"), [1, 4, 0, 0])   # why the rule is a parameter
  with pytest.raises(ValueError, match="'first'"):
    pool_index(words, "first")


@pytest.mark.parametrize("pool,expect", [("argmax", [3, 1]), ("last_nonpad", [4, 6])])
def test_text_encoder_pools_the_features_at_that_position(pool, expect):
  tokens = jnp.array([[1, 2, 3, 49, 5, 0, 0, 0], [4, 49, 6, 7, 8, 9, 10, 0]])
  enc = TextEncoder(vocab_size=50, max_len=8, width=16, depth=1, num_heads=2, pool=pool)
  params = enc.init(jax.random.PRNGKey(0), tokens)
  feats, pooled = enc.apply(params, tokens)
  assert feats.shape == (2, 8, 16) and pooled.shape == (2, 16)
  np.testing.assert_array_equal(pooled, feats[np.arange(2), np.array(expect)])
  with pytest.raises(ValueError, match="max_len=8"):
    enc.apply(params, jnp.ones((2, 9), jnp.int32))


def test_cross_attention_shape_and_pads_have_no_effect():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(2, 4, 3, 8)), jnp.float32)
  context = jnp.asarray(rng.normal(size=(2, 5, 12)), jnp.float32)
  tokens = jnp.array([[3, 1, 4, 0, 0], [0, 0, 0, 0, 0]])   # one caption of 3 words, one null caption
  module = CrossAttention(num_heads=2)
  params = module.init(jax.random.PRNGKey(0), x, context, tokens)
  np.testing.assert_allclose(module.apply(params, x, context, tokens), x, atol=1e-6)   # starts as the identity
  params = _perturb(params)
  out = module.apply(params, x, context, tokens)
  assert out.shape == x.shape
  noisy = context.at[0, 3:].set(100.0).at[1].set(-50.0)   # change every pad's features
  np.testing.assert_allclose(module.apply(params, x, noisy, tokens), out, atol=1e-6)
  np.testing.assert_allclose(out[1], x[1], atol=1e-6)      # the null caption leaves the map unchanged
  moved = module.apply(params, x, context.at[0, 1].add(1.0), tokens)   # a real token does matter
  assert float(jnp.abs(moved[0] - out[0]).max()) > 1e-3
  with pytest.raises(ValueError, match=r"\(2, 4\)"):
    module.apply(params, x, context, tokens[:, :4])


def test_block_cross_attention_needs_a_context_and_uses_its_mask():
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(2, 3, 8)), jnp.float32)
  context = jnp.asarray(rng.normal(size=(2, 4, 8)), jnp.float32)
  tokens = jnp.array([[5, 6, 0, 0], [7, 0, 0, 0]])
  block = TransformerBlock(num_heads=2, cross_attention=True)
  params = block.init(jax.random.PRNGKey(0), x, context, context_mask=padding_mask(tokens))
  assert set(params["params"]) == {"attn", "cross_attn", "ln_attn", "ln_cross", "ln_mlp", "mlp_in", "mlp_out"}
  out = block.apply(params, x, context, context_mask=padding_mask(tokens))
  out2 = block.apply(params, x, context.at[:, 2:].set(9.0), context_mask=padding_mask(tokens))
  np.testing.assert_allclose(out2, out, atol=1e-6)
  with pytest.raises(ValueError, match="no context"):
    block.apply(params, x)
  with pytest.raises(ValueError, match="cross_attention=False"):
    TransformerBlock(num_heads=2).init(jax.random.PRNGKey(0), x, context)


def test_scanned_transformer_is_the_same_function_of_stacked_parameters():
  from jaxgen.nn.transformer import Transformer
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 5, 8)), jnp.float32)
  context = jnp.asarray(rng.normal(size=(2, 3, 8)), jnp.float32)
  cmask = padding_mask(jnp.array([[1, 2, 0], [3, 0, 0]]))
  kw = dict(depth=2, num_heads=2, cross_attention=True, activation="quick_gelu")
  loop, scanned = Transformer(**kw), Transformer(**kw, scan=True)
  p_loop = _perturb(loop.init(jax.random.PRNGKey(0), x, context, context_mask=cmask))["params"]
  stacked = jax.tree.map(lambda *b: jnp.stack(b), *[p_loop[f"block_{i}"] for i in range(2)])
  p_scan = scanned.init(jax.random.PRNGKey(0), x, context, context_mask=cmask)["params"]
  assert jax.tree.map(jnp.shape, p_scan) == {"blocks": {"block": jax.tree.map(jnp.shape, stacked)}}
  run = lambda m, p: m.apply({"params": p}, x, context, context_mask=cmask, causal=True)   # noqa: E731
  want = run(loop, p_loop)
  np.testing.assert_allclose(run(scanned, {"blocks": {"block": stacked}}), want, atol=1e-5)
  assert float(jnp.abs(want - x).max()) > 1e-2


def test_bfloat16_compute_keeps_float32_params_and_softmax():
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.normal(size=(2, 6, 8)), jnp.float32)
  f32, bf16 = MultiHeadAttention(2), MultiHeadAttention(2, dtype=jnp.bfloat16)
  params = f32.init(jax.random.PRNGKey(0), x)
  assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(bf16.init(jax.random.PRNGKey(0), x)))
  out = bf16.apply(params, x.astype(jnp.bfloat16), causal=True)
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out, np.float32), f32.apply(params, x, causal=True), atol=5e-2)
