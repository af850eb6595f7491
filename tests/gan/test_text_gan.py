"""Reed et al.'s text-to-image GAN (experiments/text2image_gan.py): the GAN family conditioned through a frozen
CLIP's text embedding (jaxgen.conditioners), with GAN-CLS (gan.matching_aware) and GAN-INT (gan.interpolation).
One clip_shapes:smoke run and one text2image_gan:smoke run (the command line, 3 steps then resumed to 6) shared by
every test of the module.

- the smoke preset end to end through the command line, resumed; CLIP bit-identical after training, in no
  checkpoint of the GAN;
- one train step's D loss (the three GAN-CLS terms) and G loss (with the GAN-INT term) against a direct
  computation from the players' logits, the conditions computed directly with CLIP's text tower;
- the mismatched partners (a repeated caption is never a mismatch) and the interpolated conditions;
- what G is given when sampling from captions (experiments.sample's path) is CLIP's text embedding of them;
- the validator names bad settings.
"""
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import clip_shapes, text2image_gan
from jaxgen import registry
from jaxgen.data.builders.shapes import tokenize
from jaxgen.gan.gan import interpolate, mismatch_partners
from jaxgen.train import run as run_mod

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAPTION = "a small red circle above a large blue square"


def _leaves_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def _gan_cmd(workdir, clip, *extra):
  return [sys.executable, "-m", "experiments.text2image_gan", "--config=experiments/text2image_gan.py:smoke",
          f"--workdir={workdir}", f"--config.condition.workdir={clip}", *extra]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("textgan")
  clip = str(root / "clip")
  c = clip_shapes.get_config("smoke")
  c.update(evals=(), tensorboard=False, sample_every=0)
  run_mod.run(c, clip, experiment="experiments.clip_shapes")
  gan = str(root / "gan")
  # the one command-line run: 3 steps, then resumed to the preset's 6 (grid and sample metrics)
  first = subprocess.run(_gan_cmd(gan, clip, "--config.num_train_steps=3", "--config.sample_every=0"), cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
  assert first.returncode == 0, first.stderr[-3000:]
  second = subprocess.run(_gan_cmd(gan, clip), cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert second.returncode == 0, second.stderr[-3000:]
  return {"clip": clip, "gan": gan, "resumed": second.stdout + second.stderr}


def test_smoke_end_to_end_resumed_and_clip_frozen(runs):
  rows = [json.loads(line) for line in open(os.path.join(runs["gan"], "metrics.jsonl"))]
  assert "resumed from checkpoint at step 3" in runs["resumed"]
  train = [r for r in rows if "train/d_loss" in r]
  steps = [r["step"] for r in train]
  assert steps == sorted(set(steps)) and {2, 4, 6} <= set(steps)   # steps 1-3 in the first command, 4-6 resumed
  for r in train:
    for name in ("d_loss", "d_loss_mismatch", "g_loss", "g_loss_interp"):
      assert math.isfinite(r[f"train/{name}"])
  evals = [r for r in rows if "samples/attr_kind" in r]
  assert evals[-1]["step"] == 6 and math.isfinite(evals[-1]["samples/fid"])
  for name in ("kind", "colour", "quadrant_kind", "quadrant_colour"):
    assert 0 <= evals[-1][f"samples/attr_{name}"] <= 1 and f"samples/attr_{name}_chance" in evals[-1]
  assert os.path.exists(os.path.join(runs["gan"], "samples", "step_6.png"))
  run, source = run_mod.load_run(runs["gan"]), run_mod.load_run(runs["clip"])
  assert run.step == 6
  assert "clip" not in run.state.params and "clip" not in run.state.ema_params
  assert _leaves_equal(run.params["clip"], source.state.params)      # CLIP's trained params, after 6 steps
  assert json.load(open(os.path.join(runs["gan"], "frozen.json")))["clip"]["step"] == source.step


def _clip_embedding(source, tokens):
  """Directly: sqrt(D) * CLIP's unit-norm text embedding of the token ids."""
  emb = source.family.encode_text(source.state.params, jnp.asarray(tokens, jnp.int32))
  return math.sqrt(emb.shape[-1]) * emb


def test_one_step_losses_against_a_direct_computation(runs):
  from jaxgen.data.builders.shapes import tokenize as tok
  from jaxgen.data.image import uint8_to_signed_unit
  from jaxgen.train.step import train_step
  run, source = run_mod.load_run(runs["gan"]), run_mod.load_run(runs["clip"])
  fam, state = run.family, run.state
  assert fam.matching_aware and fam.interpolation and fam.interpolation_beta == 0.5
  captions = ["a red circle", "a red circle", "a blue square", "a large green triangle"]   # a repeated caption
  tokens = np.stack([tok(c) for c in captions])
  images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
  new_state, m = train_step(fam, state, {"image": images, "tokens": tokens}, {"clip": run.frozen["clip"]})
  assert _leaves_equal(run.frozen["clip"], source.state.params)

  h = _clip_embedding(source, tokens)
  x = uint8_to_signed_unit(images)
  z_d, z_g, _ = jax.random.split(state.step_rng(), 3)
  g0, d0 = state.params["generator"], state.params["discriminator"]
  sp = jax.nn.softplus
  D = lambda d, img, e: fam.discriminator.apply(d, img, {"embedding": e})   # noqa: E731
  G = lambda g, z, e: fam.generator.apply(g, z, {"embedding": e})          # noqa: E731
  real = D(d0, x, h)
  fake = D(d0, G(g0, jax.random.normal(z_d, (4, fam.latent_dim)), h), h)
  mis = D(d0, x, h[np.array([2, 2, 3, 0])])        # the next *different* caption of each example
  want = {"d_loss_real": jnp.mean(sp(-real)), "d_loss_fake": jnp.mean(sp(fake)), "d_loss_mismatch": jnp.mean(sp(mis))}
  want["d_loss"] = want["d_loss_real"] + (want["d_loss_fake"] + want["d_loss_mismatch"]) / 2
  for k, v in want.items():
    np.testing.assert_allclose(m[k], v, rtol=2e-5, atol=1e-6, err_msg=k)
  # G against the updated D (the new state's: the generator's update does not touch it)
  d1 = new_state.params["discriminator"]
  h_int = 0.5 * h + 0.5 * h[np.array([1, 2, 3, 0])]
  g_plain = jnp.mean(sp(-D(d1, G(g0, jax.random.normal(z_g, (4, fam.latent_dim)), h), h)))
  g_int = jnp.mean(sp(-D(d1, G(g0, jax.random.normal(jax.random.fold_in(z_g, 1), (4, fam.latent_dim)), h_int),
                           h_int)))
  np.testing.assert_allclose(m["g_loss_interp"], g_int, rtol=2e-5, atol=1e-6)
  np.testing.assert_allclose(m["g_loss"], g_plain + g_int, rtol=2e-5, atol=1e-6)


def test_mismatch_partners_and_interpolation():
  t = {"tokens": jnp.asarray([[1, 2], [1, 2], [3, 4], [1, 2]])}
  partners, has = mismatch_partners(t)
  assert partners.tolist() == [2, 2, 3, 2] and bool(has)
  for i, j in enumerate(partners.tolist()):
    assert not np.array_equal(t["tokens"][i], t["tokens"][j])
  same, has = mismatch_partners({"label": jnp.full((3,), 4)})
  assert not bool(has) and same.tolist() == [1, 2, 0]
  e = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
  for beta in (0.5, 0.25):
    got = interpolate({"embedding": e}, beta)["embedding"]
    want = np.stack([beta * np.asarray(e[i]) + (1 - beta) * np.asarray(e[(i + 1) % 5]) for i in range(5)])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_sampling_from_captions_gives_g_the_clip_embedding(runs):
  from jaxgen.eval.sample_metrics import draw_samples, eval_conditions
  run, source = run_mod.load_run(runs["gan"]), run_mod.load_run(runs["clip"])
  captions = [CAPTION, "a large green triangle"]
  cond, _ = eval_conditions(run.config, run.family, 4, captions=captions)      # experiments.sample's path
  np.testing.assert_array_equal(cond["tokens"], np.stack([tokenize(c) for c in captions * 2]))
  rng = jax.random.PRNGKey(3)
  got = run.family.sample(run.params, rng, 4, cond)
  z = run.family.latents(rng, 4)
  want = run.family.generator.apply(run.params["generator"], z, {"embedding": _clip_embedding(source, cond["tokens"])})
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  images = draw_samples(run.family, run.params, 4, os.path.join(runs["gan"], "caption_parts"), chunk=4, cond=cond)
  assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
  with pytest.raises(ValueError, match="--label: .* takes no class label"):
    eval_conditions(run.config, run.family, 4, label=1)


@pytest.mark.parametrize("change, message", [
    ({"condition.kind": "clip_image"}, r"condition.kind='clip_image'; a GAN takes one of: none, clip_text"),
    ({}, r"condition.workdir='' holds no finished run"),
    ({"gan.interpolation_beta": 1.5}, r"gan.interpolation_beta=1.5 must be a number in \[0, 1\]"),
    ({"condition.kind": "none"}, r"gan.matching_aware=True \(GAN-CLS\) needs a conditional GAN"),
    ({"condition.kind": "none", "gan.matching_aware": False}, r"gan.interpolation=True \(GAN-INT\) .*condition.kind='clip_text'"),
    ({"model.num_classes": 5}, r"condition.kind='clip_text' and model.num_classes=5"),
])
def test_the_validator_names_bad_settings(change, message):
  c = text2image_gan.get_config("smoke")             # each is refused before the CLIP run is looked for
  for field, value in change.items():
    section, name = field.split(".")
    c[section][name] = value
  with pytest.raises(ValueError, match=message):
    registry.validate_config(c)
