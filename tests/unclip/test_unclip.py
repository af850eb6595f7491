"""unCLIP on the shared trainer (jaxgen.conditioners and the CLIP codec, jaxgen.unclip.pipeline): one
clip_shapes:smoke run, and the unclip_shapes smoke presets trained against it as frozen parts, shared by every
test of the module.

- the decoder (U-Net conditioned on the CLIP image embedding of its own training image) and the prior
  (PriorTransformer over CLIP image embeddings, conditioned on the caption's CLIP text embedding and token
  features) train through the trainer; a resumed run equals an uninterrupted one bit for bit (prior), the decoder
  resumes and its grid is drawn from held-out images' embeddings;
- CLIP's parameters are bit-identical after training and in no checkpoint of the new runs;
- what the conditioner and the codec compute, embedding dropout and guidance, against direct computations; the
  prior's cached embeddings (its preset's condition.cache) train the same loss as embeddings in the step;
- reranking keeps the highest CLIP score; the unclip_sample command end to end (captions with reranking, and
  variations) and its refusals; the validator names bad conditions.
"""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import clip_shapes, unclip_shapes
from jaxgen.train import run as run_mod

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _leaves_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def _stage(preset, clip, steps, **changes):
  c = unclip_shapes.get_config(preset)
  c.condition.workdir = clip
  if c.get("codec", {}).get("kind") == "clip_image":
    c.codec.workdir = clip
  c.update(evals=(), tensorboard=False, num_train_steps=steps, checkpoint_every=3, **changes)
  return c


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("unclip")
  clip = str(root / "clip")
  c = clip_shapes.get_config("smoke")
  c.update(evals=(), tensorboard=False, sample_every=0)
  run_mod.run(c, clip, experiment="experiments.clip_shapes")
  decoder = str(root / "decoder")
  # 3 steps, then resumed to 6 (a grid of 8 at the end, from held-out images' CLIP embeddings)
  run_mod.run(_stage("smoke_decoder", clip, 3, sample_every=0), decoder, experiment="experiments.unclip_shapes")
  run_mod.run(_stage("smoke_decoder", clip, 6, sample_every=6, num_samples=8), decoder,
              experiment="experiments.unclip_shapes")
  prior = str(root / "prior")
  run_mod.run(_stage("smoke_prior", clip, 6), prior, experiment="experiments.unclip_shapes")
  return {"clip": clip, "decoder": decoder, "prior": prior, "root": root}


def test_clip_is_frozen_bit_identical_and_not_saved(runs):
  source = run_mod.load_run(runs["clip"])
  for stage in ("decoder", "prior"):
    run = run_mod.load_run(runs[stage])
    assert run.step == 6
    assert "clip" not in run.state.params and "clip" not in run.state.ema_params
    # the trained parameters of the CLIP run (what its own evaluation reads), bit for bit, after 6 steps
    assert _leaves_equal(run.params["clip"], source.state.params)
    record = json.load(open(os.path.join(runs[stage], "frozen.json")))["clip"]
    assert record["use"] == "trained" and record["step"] == source.step
  rows = [json.loads(line) for line in open(os.path.join(runs["decoder"], "metrics.jsonl"))]
  steps = [r["step"] for r in rows if "train/loss" in r]
  assert steps == sorted(steps) and steps[-1] == 6 and all(np.isfinite(r["train/loss"]) for r in rows
                                                           if "train/loss" in r)
  assert os.path.exists(os.path.join(runs["decoder"], "samples", "step_6.png"))


def test_a_resumed_prior_equals_an_uninterrupted_one(runs, tmp_path):
  interrupted = str(tmp_path / "prior_resumed")
  run_mod.run(_stage("smoke_prior", runs["clip"], 3), interrupted, experiment="experiments.unclip_shapes")
  run_mod.run(_stage("smoke_prior", runs["clip"], 6), interrupted, experiment="experiments.unclip_shapes")
  a, b = run_mod.load_run(interrupted), run_mod.load_run(runs["prior"])
  assert a.step == b.step == 6
  assert _leaves_equal(a.state.params, b.state.params) and _leaves_equal(a.state.opt_state, b.state.opt_state)


def test_conditioner_codec_dropout_and_guidance_against_direct_computations(runs):
  from jaxgen.clip.api import encode_images, encode_text, load_clip
  from jaxgen.data.specs import heldout_examples
  dec, pri = run_mod.load_run(runs["decoder"]), run_mod.load_run(runs["prior"])
  clip = load_clip(runs["clip"])
  d = clip.family.model.embed_dim
  ex = heldout_examples("shapes_tiny", 6, ("image", "tokens"))
  img_emb, txt_emb = encode_images(clip, ex["image"]), encode_text(clip, ex["tokens"])
  # decoder: cond['embedding'] = sqrt(D) * CLIP's unit image embedding of the batch's image
  got = dec.family.encode_cond(dec.params, {"image": jnp.asarray(ex["image"])})
  np.testing.assert_allclose(got["embedding"], np.sqrt(d) * img_emb, rtol=1e-5, atol=1e-6)
  # prior: x0 = sqrt(D) * the image embedding; cond = the text embedding and the text tower's token features
  x0 = pri.family.codec.encode(pri.params, {"image": jnp.asarray(ex["image"])})
  np.testing.assert_allclose(x0, np.sqrt(d) * img_emb, rtol=1e-5, atol=1e-6)
  cond = pri.family.encode_cond(pri.params, {"tokens": jnp.asarray(ex["tokens"])})
  np.testing.assert_allclose(cond["embedding"], np.sqrt(d) * txt_emb, rtol=1e-5, atol=1e-6)
  feats, _ = clip.family.model.apply(clip.state.params, jnp.asarray(ex["tokens"][:, :clip.family.text_len]),
                                     method=type(clip.family.model).encode_text_tokens)
  np.testing.assert_allclose(cond["token_features"], feats, rtol=1e-5, atol=1e-6)
  decoded = np.asarray(pri.family.codec.decode(pri.params, 3.0 * x0))
  np.testing.assert_allclose(np.linalg.norm(decoded, axis=1), np.sqrt(d), rtol=1e-5)
  np.testing.assert_allclose(decoded, x0, rtol=1e-4, atol=1e-5)
  # embedding dropout: each example's whole encoded condition -> zeros with probability label_dropout, one
  # Bernoulli draw per example from the step's cond rng (here with p = 0.5 for a visible mix)
  import dataclasses
  fam = dataclasses.replace(pri.family, label_dropout=0.5)
  rng = jax.random.PRNGKey(3)
  dropped = fam._cond({"tokens": jnp.asarray(ex["tokens"])}, rng, True, pri.params)
  keep = ~np.asarray(jax.random.bernoulli(rng, 0.5, (6,)))
  assert 0 < keep.sum() < 6
  for k in ("embedding", "token_features"):
    want = np.where(keep.reshape((6,) + (1,) * (cond[k].ndim - 1)), np.asarray(cond[k]), 0.0)
    np.testing.assert_array_equal(np.asarray(dropped[k]), want)
  # guidance: (1 + w) f(x, c) - w f(x, null) of the network's x0 prediction, null = zero features
  w, x, t = 2.5, jnp.asarray(np.random.default_rng(0).standard_normal((6, d)), jnp.float32), jnp.full((6,), 7)
  eps, x0_hat = pri.family.model_fn(pri.params, cond, w)(x, t)
  c_eps, c_x0 = pri.family.model_fn(pri.params, cond, 0.0)(x, t)
  null = {k: jnp.zeros_like(v) for k, v in cond.items()}
  n_eps, n_x0 = pri.family.model_fn(pri.params, null, 0.0)(x, t)
  np.testing.assert_allclose(eps, (1 + w) * np.asarray(c_eps) - w * np.asarray(n_eps), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(x0_hat, (1 + w) * np.asarray(c_x0) - w * np.asarray(n_x0), rtol=1e-4, atol=1e-5)
  assert not np.allclose(c_x0, n_x0)        # the condition reaches the trained network


def test_cached_embeddings_train_the_same_loss_as_embeddings_in_the_step(runs):
  """condition.cache (the prior's preset): the same examples in the same order, the encoder skipped, the same loss."""
  from jaxgen.data import train_data_fn
  from jaxgen.unclip.cache import clip_data_fn
  pri = run_mod.load_run(runs["prior"])
  config = _stage("smoke_prior", runs["clip"], 6)
  assert config.condition.cache
  cached = next(clip_data_fn(config)(0))
  plain = next(train_data_fn(config)(0))
  assert "image" not in cached and {"image_embedding", "embedding", "token_features"} <= set(cached)
  np.testing.assert_array_equal(cached["tokens"], plain["tokens"])
  rng = jax.random.PRNGKey(5)
  a = float(pri.family.loss(pri.params, jax.tree.map(jnp.asarray, cached), rng)[0])
  b = float(pri.family.loss(pri.params, jax.tree.map(jnp.asarray, plain), rng)[0])
  assert np.isfinite(a) and abs(a - b) <= 1e-5 * max(1.0, abs(b))


def test_generation_keeps_the_highest_clip_scores_and_variations(runs):
  from jaxgen.clip.api import score
  from jaxgen.unclip.pipeline import load_unclip
  from jaxgen.unclip.rerank import rerank
  pipe = load_unclip(runs["decoder"], runs["prior"], chunk=8)
  caps = ["a small red circle", "a large blue square above a small green star"]
  out = pipe.generate(caps, 2, rerank=3, keep_candidates=True, guidance_decoder=1.0)
  assert out.images.shape == (2, 2, 32, 32, 3) and out.images.dtype == np.uint8
  assert out.candidates.shape == (2, 6, 32, 32, 3)
  # the candidate scores are the CLIP run's own logits of each candidate against its caption
  for i, cap in enumerate(caps):
    np.testing.assert_allclose(out.candidate_scores[i], score(pipe.clip, out.candidates[i], [cap])[:, 0],
                               rtol=1e-4, atol=1e-4)
  best, best_score, _ = rerank(out.candidates, out.candidate_scores)
  np.testing.assert_array_equal(out.images[:, 0], best)
  assert np.all(out.scores[:, 0] == best_score) and np.all(out.scores[:, 0] >= out.scores[:, 1])
  var = pipe.variations(out.images[:, 0], 3)
  assert var.shape == (2, 3, 32, 32, 3)
  without = pipe.generate(caps, 1, use_prior=False)
  assert without.images.shape == (2, 1, 32, 32, 3)


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "experiments.unclip_sample", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=600)


def test_unclip_sample_command(runs, tmp_path):
  out = str(tmp_path / "s.npz")
  r = _cli(f"--workdir={runs['decoder']}", f"--prior={runs['prior']}", "--caption=a small red circle",
           "--num=2", "--rerank=2", f"--out={out}")
  assert r.returncode == 0, r.stderr[-2000:]
  with np.load(out) as z:
    assert z["images"].shape == (1, 2, 32, 32, 3) and z["images"].dtype == np.uint8
    assert list(z["captions"]) == ["a small red circle"] and z["scores"][0, 0] >= z["scores"][0, 1]
  assert os.path.exists(out[:-4] + ".png")
  from PIL import Image
  from jaxgen.data.specs import heldout_examples
  src = str(tmp_path / "src.png")
  Image.fromarray(heldout_examples("shapes_tiny", 1, ("image",))["image"][0]).save(src)
  r = _cli(f"--workdir={runs['decoder']}", f"--variations={src}", "--num=2", f"--out={tmp_path / 'v.npz'}")
  assert r.returncode == 0, r.stderr[-2000:]
  with np.load(tmp_path / "v.npz") as z:
    assert z["images"].shape == (1, 2, 32, 32, 3) and z["source"].shape == (32, 32, 3)
  # refused in one line before anything is loaded
  for args, msg in [(["--caption=a red circle", "--variations=" + src], "give exactly one of"),
                    (["--caption=a red circle", "--rerank=0"], "--rerank=0 must be >= 1"),
                    (["--caption=a red circle", "--guidance_prior=1"], "--guidance_prior=1.0 needs --prior"),
                    (["--caption=a purple elephant"], "elephant")]:
    r = _cli(f"--workdir={runs['decoder']}", *args)
    assert r.returncode == 2 and msg in r.stderr, (args, r.stderr[-1000:])


def test_the_validator_names_bad_conditions(runs):
  from jaxgen import registry
  c = _stage("smoke_decoder", runs["clip"], 6)
  c.condition.kind = "clip_audio"
  with pytest.raises(ValueError, match=r"condition.kind='clip_audio'; choose one of: none, clip_image, clip_text"):
    registry.validate_config(c)
  c = _stage("smoke_decoder", runs["decoder"], 6)
  with pytest.raises(ValueError, match=r"condition.workdir=.* holds a 'ddpm' run; it must be a 'clip' run"):
    registry.validate_config(c)
  c = _stage("smoke_decoder", runs["clip"], 6)
  c.model.embed_dim = 32
  with pytest.raises(ValueError, match=r"model.embed_dim=32: the U-Net reads cond\['embedding'\] of shape \(32,\); "
                                       r"condition.kind='clip_image' gives it with shape \(16,\)"):
    registry.validate_config(c)
  c = _stage("smoke_prior", runs["clip"], 6)
  other = runs["root"] / "clip_copy"            # another (valid) CLIP run directory
  if not other.exists():
    import shutil
    shutil.copytree(runs["clip"], other)
  c.codec.workdir = str(other)
  with pytest.raises(ValueError, match=r"share one frozen CLIP run"):
    registry.validate_config(c)
  c = _stage("smoke_prior", runs["clip"], 6)
  c.condition.kind = "none"
  with pytest.raises(ValueError, match=r"condition.cache=True caches a condition encoder's outputs; "
                                       r"condition.kind='none' has none"):
    registry.validate_config(c)
  c.condition.cache = False
  with pytest.raises(ValueError, match=r"model.text_embed_dim=16: the prior reads cond\['embedding'\].*"
                                       r"data.name='shapes_tiny' gives no such feature"):
    registry.validate_config(c)
