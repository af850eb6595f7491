"""CoGAN (experiments.cogan, model.kind='cogan'): tied layers are one leaf whose gradient sums both domains'; the
outlined `shapes` leave the filled ones unchanged and share their scenes; unpaired, resumable two-domain batches;
the pair agreement metric; the smoke preset from the command line, resumed. One smoke run (module fixture)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments.cogan import get_config
from jaxgen import registry
from jaxgen.data.builders import shapes as S
from jaxgen.gan import losses
from jaxgen.gan.build import make_gan, validate_gan_config
from jaxgen.gan.cogan import cogan_data_fn
from jaxgen.eval.pair_agreement import CHANCE_SEED, grade_pairs, pair_agreement
from jaxgen.train.family import METRIC_NAME

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# sha256 of the filled renderings of train/test examples 0-15, computed with the code before the outlined
# rendering was added (commit d3066dc): the `shapes` data must not change.
SHAPES_FILLED_SHA256 = "a0deb0cee0ccd2c9ece375bde1d977ec7ab156c0d3acb239fc339dd6cfb3eac2"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  """The smoke preset trained once, in process (6 steps, checkpoints at 3 and 6, the evaluation at the end)."""
  from jaxgen.train.run import run
  workdir = tmp_path_factory.mktemp("cogan") / "run"
  run(get_config("smoke"), str(workdir), experiment="experiments.cogan")
  return workdir


# -- the tying ----------------------------------------------------------------------------------------------------
def test_tied_layers_are_one_leaf_whose_gradient_is_the_sum_of_both_domains():
  config = get_config("smoke")
  gan = make_gan(config)
  params = gan.init(jax.random.PRNGKey(0))
  g, d = params["generator"]["params"], params["discriminator"]["params"]
  # one leaf per tied layer, two per untied one (the smoke geometry: G project, up_0 tied, out untied; D conv_0
  # untied, conv_1 and the logit tied)
  assert sorted(g) == ["a_out", "b_out", "shared_bn_0", "shared_bn_1", "shared_project", "shared_up_0"]
  assert sorted(d) == ["a_conv_0", "b_conv_0", "shared_conv_1", "shared_logit"]
  z = gan.latents(jax.random.PRNGKey(1), 8)
  real = jax.random.uniform(jax.random.PRNGKey(2), (8,) + gan.data_shape, minval=-1, maxval=1)

  def d_logits(dp, x):
    return gan.discriminate({"params": dp}, x)[0]

  def fake(gp):
    return gan.generate({"params": gp}, z)

  # the family's losses average over both columns of the (B, 2) logits; each domain's loss alone reads one column
  d_loss = lambda dp: losses.discriminator_loss(gan.loss, d_logits(dp, real), d_logits(dp, fake(g)))[0]  # noqa
  d_dom = [lambda dp, i=i: losses.discriminator_loss(gan.loss, d_logits(dp, real)[:, i], d_logits(dp, fake(g))[:, i])[0]
           for i in range(2)]
  g_loss = lambda gp: losses.generator_loss(gan.loss, d_logits(d, fake(gp)))  # noqa
  g_dom = [lambda gp, i=i: losses.generator_loss(gan.loss, d_logits(d, fake(gp))[:, i]) for i in range(2)]
  for loss, per_domain, p, tied, untied in ((d_loss, d_dom, d, ("shared_conv_1", "shared_logit"), "conv_0"),
                                            (g_loss, g_dom, g, ("shared_project", "shared_up_0"), "out")):
    full = jax.grad(loss)(p)
    ga, gb = (jax.grad(f)(p) for f in per_domain)
    for name in tied:                # used by both domains: both contribute, and the leaf gets their sum
      for leaf in ("kernel",):
        a, b = np.asarray(ga[name][leaf]), np.asarray(gb[name][leaf])
        assert np.abs(a).max() > 0 and np.abs(b).max() > 0 and not np.allclose(a, b)
        np.testing.assert_allclose(2 * np.asarray(full[name][leaf]), a + b, rtol=1e-5, atol=1e-7)
    # an untied layer gets its own domain's gradient only
    assert np.abs(np.asarray(ga[f"a_{untied}"]["kernel"])).max() > 0
    assert np.abs(np.asarray(gb[f"a_{untied}"]["kernel"])).max() == 0
    assert np.abs(np.asarray(ga[f"b_{untied}"]["kernel"])).max() == 0


def test_validation_names_the_bad_field():
  for field, value, words in (("cogan.domain_b", "edges", "cogan.domain_b='edges'"),
                              ("model.g_untied", 3, "model.g_untied=3"), ("model.d_untied", 0, "model.d_untied=0"),
                              ("model.num_classes", 10, "model.num_classes=10")):
    config = get_config("smoke")
    section, leaf = field.split(".")
    config[section][leaf] = value
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
      validate_gan_config(config)
  config = get_config("smoke")
  config.cogan.domain_b = "shapes_outlined"          # needs shapes
  with pytest.raises(ValueError, match="cogan.domain_b='shapes_outlined'.*data.name='digits'"):
    validate_gan_config(config)
  config = get_config("smoke")
  config.evals = ("sample_metrics",)
  with pytest.raises(ValueError, match="'sample_metrics'.*pair_agreement"):
    registry.validate_config(config)


# -- the data -----------------------------------------------------------------------------------------------------
def test_outlined_shapes_leave_shapes_unchanged_and_share_their_scenes():
  from jaxgen.data.tfds import load_split_numpy
  h = hashlib.sha256()
  for split in ("train", "test"):
    for i in range(16):
      h.update(S.render(S.make_scene(split, i)).tobytes())
  assert h.hexdigest() == SHAPES_FILLED_SHA256
  filled, outlined = load_split_numpy("shapes_tiny", "train"), load_split_numpy("shapes_outlined_tiny", "train")
  np.testing.assert_array_equal(filled["image"][:16], [S.render(S.make_scene("train", i)) for i in range(16)])
  for k in ("label", "attributes", "tokens"):
    np.testing.assert_array_equal(filled[k], outlined[k])
  np.testing.assert_array_equal(outlined["image"][:16],
                                [S.render(S.make_scene("train", i), S.OUTLINE_PX) for i in range(16)])
  for i in range(16):        # an outline covers part of the filled shape, nothing outside it
    scene = S.make_scene("train", i)
    bg = S.render(S.Scene(scene.background, ())).astype(int)
    f_on = np.any(filled["image"][i] != bg, -1)
    o_on = np.any(np.abs(outlined["image"][i].astype(int) - bg) > 8, -1)
    assert o_on.any() and not (o_on & ~f_on).any() and o_on.sum() < f_on.sum()


def test_two_domain_batches_are_unpaired_and_a_pure_function_of_seed_and_step():
  from jaxgen.data.tfds import load_split_numpy
  config = get_config("smoke")
  config.data.name, config.cogan.domain_b = "shapes_tiny", "shapes_outlined"
  fn = cogan_data_fn(config)
  it = fn(0)
  batches = [next(it) for _ in range(4)]
  index = [{im.tobytes(): i for i, im in enumerate(load_split_numpy(name, "train")["image"])}
           for name in ("shapes_tiny", "shapes_outlined_tiny")]
  for batch in batches:
    x = batch["image"]
    assert x.shape == (16, 32, 64, 3) and x.dtype == np.uint8
    a = [index[0][im.tobytes()] for im in x[:, :, :32]]
    b = [index[1][im.tobytes()] for im in x[:, :, 32:]]
    assert max(a) < 128 <= min(b)            # A from the first half, B from the second: never the same scene
  np.testing.assert_array_equal(next(fn(3))["image"], batches[3]["image"])   # resumes exactly
  # digits: A a first-half digit, B the negative of a second-half one
  x = next(cogan_data_fn(get_config("smoke"))(0))["image"]
  train = load_split_numpy("digits", "train")["image"]
  half = {im.tobytes(): i < len(train) // 2 for i, im in enumerate(train)}
  assert all(half[im.tobytes()] for im in x[:, :, :8])
  assert not any(half[(255 - im).tobytes()] for im in x[:, :, 8:])


# -- the evaluation -----------------------------------------------------------------------------------------------
def test_pair_agreement_against_a_direct_count():
  a, b = {"label": np.array([1, 2, 3, 4, 5, 6])}, {"label": np.array([1, 2, 0, 4, 5, 0])}
  out = pair_agreement(a, b)
  perm = np.random.default_rng(CHANCE_SEED).permutation(6)
  assert out["pair_agreement"] == pytest.approx(4 / 6)
  assert out["pair_agreement_chance"] == pytest.approx(np.mean([a["label"][i] == b["label"][perm[i]] for i in range(6)]))
  # shapes: three pairs; 0 agrees fully, 1 differs in a colour, 2 in the count
  heads = {"count": [0, 1, 2]}
  for q in range(4):
    heads.update({f"q{q}_kind": [q % 2, 1, 0], f"q{q}_colour": [2, 3, 0], f"q{q}_size": [1, 1, 1]})
  pa = {k: np.array(v) for k, v in heads.items()}
  pb = {k: v.copy() for k, v in pa.items()}
  pb["q3_colour"][1] = 5
  pb["count"][2] = 0
  out = pair_agreement(pa, pb)
  assert (out["pair_agreement"], out["pair_agreement_count"], out["pair_agreement_kind"],
          out["pair_agreement_colour"]) == pytest.approx((1 / 3, 2 / 3, 1.0, 2 / 3))


def test_real_pairs_agree_and_random_pairs_do_not(smoke_run):
  """The metric on true (digit, negative) pairs of held-out images: the feature network's accuracy, far above
  random pairs."""
  from jaxgen.data import load_heldout
  from jaxgen.eval import sample_metrics as SM
  config = get_config("smoke")
  space = SM.load_feature_space(config)                 # the smoke run's (cached) digits network
  ref = SM.reference(config, space)
  x = load_heldout(config)["image"][:200]
  out = grade_pairs((space, space), (ref, ref), np.concatenate([x, 255 - x], axis=2), "negative")
  assert out["samples/pair_agreement"] == 1.0           # the B half inverted back is the same image
  assert out["samples/pair_agreement_chance"] < 0.3
  assert out["samples/a/fid"] == pytest.approx(out["samples/b/fid"])


# -- end to end ---------------------------------------------------------------------------------------------------
def test_smoke_run_and_its_resume_from_the_command_line(smoke_run, tmp_path):
  rows = [json.loads(line) for line in open(smoke_run / "metrics.jsonl")]
  scored = [r for r in rows if "samples/pair_agreement" in r]
  assert [r["step"] for r in scored] == [6]
  names = [k for r in rows for k in r if k != "step"]
  assert all(METRIC_NAME.match(k) for k in names)
  declared = registry.declared_metrics("gan", ("pair_agreement",))
  evaluated = [k for k in names if k.startswith("samples/")]
  assert set(registry.match_metrics(declared, evaluated)) == set(evaluated)
  for d in "ab":
    assert scored[0][f"samples/{d}/fid"] > 0 and 0 <= scored[0][f"samples/{d}/precision"] <= 1
  assert 0 <= scored[0]["samples/pair_agreement_chance"] <= 1
  from PIL import Image
  w, h = Image.open(smoke_run / "samples" / "step_6.png").size
  assert w > h                                          # pairs side by side: a grid of (8, 16) images
  # resume: the run as it stood at step 3, continued by the command line, ends where the straight run did
  resumed = tmp_path / "resumed"
  shutil.copytree(smoke_run, resumed)
  shutil.rmtree(resumed / "checkpoints" / "6")
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run([sys.executable, "-m", "experiments.cogan", "--config=experiments/cogan.py:smoke",
                         f"--workdir={resumed}", "--config.evals=()"], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  assert "resumed from checkpoint at step 3" in proc.stdout
  from jaxgen.train.run import load_run
  a, b = load_run(str(smoke_run)), load_run(str(resumed))
  assert a.step == b.step == 6
  for x, y in zip(jax.tree.leaves(a.state.params), jax.tree.leaves(b.state.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
