"""BigGAN (jaxgen.nn.biggan, the GAN family's gan.ortho_weight / gan.bn_stats): conditional batch norm against
numpy in batch and running/standing mode, the projection logit against a direct computation, the orthogonal
regulariser against its formula, the hierarchical latent's chunks, standing statistics bit-identical from a
reloaded checkpoint, the validator's errors, and the smoke preset through its command line with resume (one
smoke run, trained once for the module)."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.biggan import get_config
from jaxgen import registry
from jaxgen.gan import regularisers
from jaxgen.nn.biggan import BigGANDiscriminator, BigGANGenerator, CondBatchNorm, z_chunks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  r = subprocess.run([sys.executable, "-m", "experiments.biggan", "--config=experiments/biggan.py:smoke", *args],
                     cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
  return r


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("biggan") / "smoke"
  _cli(f"--workdir={workdir}")
  return workdir


# -- conditional batch norm ---------------------------------------------------------------------------------
def test_conditional_batch_norm_matches_numpy_in_batch_and_running_mode():
  rng = np.random.default_rng(0)
  x = rng.normal(1.5, 2.0, (6, 4, 4, 3)).astype(np.float32)
  gain, bias = rng.normal(1, 0.3, (6, 3)).astype(np.float32), rng.normal(0, 0.5, (6, 3)).astype(np.float32)
  bn = CondBatchNorm(momentum=0.9)
  variables = bn.init(jax.random.PRNGKey(0), x, gain, bias)
  mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
  want = (x - mean) / np.sqrt(var + 1e-5) * gain[:, None, None, :] + bias[:, None, None, :]
  y, mutated = bn.apply(variables, x, gain, bias, mutable=["batch_stats"])
  np.testing.assert_allclose(np.asarray(y), want, rtol=1e-4, atol=1e-4)
  # the running statistics: an EMA of the batch's (from mean 0, var 1)
  np.testing.assert_allclose(np.asarray(mutated["batch_stats"]["mean"]), 0.1 * mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(mutated["batch_stats"]["var"]), 0.9 + 0.1 * var, rtol=1e-5)
  # without a mutable collection (the discriminator's update draws fakes so) the batch's statistics, nothing kept
  np.testing.assert_allclose(np.asarray(bn.apply(variables, x, gain, bias)), np.asarray(y), atol=1e-6)
  # running / standing mode: whatever 'batch_stats' holds, not the batch's statistics
  stats = {"mean": rng.normal(0, 1, 3).astype(np.float32), "var": rng.uniform(0.5, 2, 3).astype(np.float32)}
  y = bn.apply({"batch_stats": stats}, x, gain, bias, use_running_average=True)
  want = (x - stats["mean"]) / np.sqrt(stats["var"] + 1e-5) * gain[:, None, None, :] + bias[:, None, None, :]
  np.testing.assert_allclose(np.asarray(y), want, rtol=1e-4, atol=1e-4)


def _sn(kernel, u):
  """A spectrally normalised kernel computed directly (one power iteration from the stored u, as the layer)."""
  w = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
  u = np.asarray(u, np.float64)
  v = w @ u
  v /= np.linalg.norm(v)
  u = w.T @ v
  u /= np.linalg.norm(u)
  v = w @ u
  v /= np.linalg.norm(v)
  return np.asarray(kernel, np.float64) / (v @ w @ u)


def test_projection_logit_is_linear_plus_embedding_inner_product():
  d = BigGANDiscriminator(ch=4, d_mults=(1, 2), d_down=(True, True), num_classes=5, attn_res=16)
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 32, 32, 3))
  y = jnp.array([0, 3, 4, 3], jnp.int32)
  variables = d.init(jax.random.PRNGKey(2), x, {"label": y})
  out, inter = d.apply(variables, x, {"label": y}, capture_intermediates=True)
  feats = np.asarray(inter["intermediates"]["block_1"]["__call__"][0], np.float64)
  h = np.maximum(feats, 0).sum((1, 2))
  p, s = variables["params"], variables["spectral"]
  lin = h @ _sn(p["linear"]["sn"]["kernel"], s["linear"]["sn"]["u"])[:, 0] + float(p["linear"]["bias"][0])
  emb = (np.eye(5)[np.asarray(y)] @ _sn(p["projection"]["sn"]["kernel"], s["projection"]["sn"]["u"])
         + np.asarray(p["projection"]["bias"]))
  np.testing.assert_allclose(np.asarray(out), lin + np.sum(emb * h, -1), rtol=1e-3, atol=1e-3)
  # the projection term is what makes the logit depend on the class
  other = d.apply(variables, x, {"label": (y + 1) % 5})
  assert np.abs(np.asarray(other) - np.asarray(out)).max() > 1e-4


def test_orthogonal_regulariser_matches_its_formula_and_vanishes_for_orthogonal_kernels():
  rng = np.random.default_rng(3)
  params = {"conv": {"kernel": rng.normal(size=(3, 3, 4, 5)).astype(np.float32),
                     "bias": rng.normal(size=(5,)).astype(np.float32)},
            "block": {"sn": {"kernel": rng.normal(size=(6, 7)).astype(np.float32)}},
            "shared": {"embedding": rng.normal(size=(5, 8)).astype(np.float32)}}
  want = 0.0
  for w in (params["conv"]["kernel"], params["block"]["sn"]["kernel"]):
    m = np.asarray(w, np.float64).reshape(-1, w.shape[-1])
    gram = m.T @ m
    want += np.sum((gram - np.diag(np.diag(gram))) ** 2)
  np.testing.assert_allclose(float(regularisers.orthogonal_regulariser(params)), want, rtol=1e-4)
  q, _ = np.linalg.qr(rng.normal(size=(36, 5)))                    # orthonormal columns: W^T W = I
  ortho = {"conv": {"kernel": (3.0 * q).reshape(3, 3, 4, 5).astype(np.float32)}}   # scaled: still orthogonal
  assert float(regularisers.orthogonal_regulariser(ortho)) < 1e-6 * want


def test_hierarchical_latent_each_block_sees_its_own_chunk():
  g = BigGANGenerator((32, 32, 3), ch=4, g_mults=(2, 2, 1), num_classes=5, shared_dim=4, hier=True, attn_res=16)
  z = jax.random.normal(jax.random.PRNGKey(4), (3, 8))
  first, chunks = z_chunks(z, 3, True)
  assert first.shape == (3, 2) and [c.shape for c in chunks] == [(3, 2)] * 3
  np.testing.assert_array_equal(np.asarray(jnp.concatenate([first, *chunks], -1)), np.asarray(z))
  cond = {"label": jnp.array([0, 2, 4], jnp.int32)}
  variables = g.init(jax.random.PRNGKey(5), z, cond)

  def blocks(z):
    out, inter = g.apply(variables, z, cond, capture_intermediates=True)
    return [np.asarray(inter["intermediates"][f"block_{i}"]["__call__"][0]) for i in range(3)] + [np.asarray(out)]

  base = blocks(z)
  for chunk in range(4):                 # chunk 0: the linear layer (everything changes); chunk k: block k - 1 on
    moved = blocks(z.at[:, 2 * chunk:2 * chunk + 2].add(1.0))
    for i in range(4):                   # the three blocks and the output
      changed = np.abs(moved[i] - base[i]).max() > 1e-6
      assert changed == (i >= max(chunk - 1, 0)), (chunk, i)


# -- the family: options, validation, a trained run -----------------------------------------------------------
def test_validator_names_the_bad_biggan_fields():
  cases = [("gan.bn_stats", "ema", "gan.bn_stats='ema'"), ("gan.ortho_weight", -1.0, "gan.ortho_weight=-1.0"),
           ("model.latent_dim", 7, "model.latent_dim=7"), ("model.attn_res", 8, "model.attn_res=8"),
           ("model.d_down", (True,), "model.d_down=(True,)"), ("gan.standing_batches", 0, "gan.standing_batches=0")]
  for field, value, message in cases:
    c = get_config("smoke")
    section, leaf = field.split(".")
    c[section][leaf] = value
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
      registry.validate_config(c)
  from experiments.dcgan_cifar import get_config as dcgan_config
  c = dcgan_config("smoke")
  c.gan.bn_stats = "running"
  with pytest.raises(ValueError, match="gan.bn_stats='running' needs a generator with running statistics"):
    registry.validate_config(c)


def test_standing_statistics_from_a_reloaded_checkpoint_are_bit_identical(smoke_run, tmp_path):
  from jaxgen.train.run import load_run
  run = load_run(str(smoke_run))
  g_ema, g_raw = run.params["generator"], run.state.params["generator"]
  # the EMA generator's running statistics are the trained generator's, copied ('buffer' leaves), and they moved
  for a, b in zip(jax.tree.leaves(g_ema["batch_stats"]), jax.tree.leaves(g_raw["batch_stats"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert np.abs(np.asarray(g_raw["batch_stats"]["bn_out"]["mean"])).max() > 0
  # the EMA weights differ from the trained ones (EMA from step 2 of 6)
  assert any(np.abs(np.asarray(a) - np.asarray(b)).max() > 0
             for a, b in zip(jax.tree.leaves(g_ema["params"]), jax.tree.leaves(g_raw["params"])))
  standing = jax.jit(run.family.standing_stats)(g_ema)
  path = tmp_path / "standing.npz"
  flat = {"/".join(str(getattr(k, "key", k)) for k in p): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(standing)[0]}
  np.savez(path, **flat)
  assert jax.tree.structure(standing) == jax.tree.structure(g_ema["batch_stats"])
  again = load_run(str(smoke_run))
  restored = jax.jit(again.family.standing_stats)(again.params["generator"])
  stored = np.load(path)
  for p, v in jax.tree_util.tree_flatten_with_path(restored)[0]:
    np.testing.assert_array_equal(np.asarray(v), stored["/".join(str(getattr(k, "key", k)) for k in p)])
  # sampling with standing statistics is the generator in running mode with them in place of the running ones
  rng, cond = jax.random.PRNGKey(7), {"label": jnp.arange(10, dtype=jnp.int32) % 5}
  fam = again.family
  got = fam.sample(again.params, rng, 10, cond, bn_stats="standing")
  want = fam.generator.apply({**again.params["generator"], "batch_stats": restored}, fam.latents(rng, 10), cond,
                             use_running_average=True)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)
  running = fam.sample(again.params, rng, 10, cond, bn_stats="running")
  batch = fam.sample(again.params, rng, 10, cond, bn_stats="batch")
  assert np.abs(np.asarray(running) - np.asarray(got)).max() > 1e-6
  assert np.abs(np.asarray(batch) - np.asarray(got)).max() > 1e-6
  # the sampling option goes through the family's declared options and validator
  with pytest.raises(ValueError, match="gan.bn_stats='bad'"):
    registry.apply_sample_options(again.config, {"bn_stats": "bad"})


def test_smoke_preset_trains_evaluates_and_resumes(smoke_run):
  rows = [json.loads(line) for line in open(smoke_run / "metrics.jsonl")]
  trained = [r for r in rows if "train/ortho" in r]
  assert trained and all(np.isfinite(r["train/ortho"]) and r["train/ortho"] > 0 for r in trained)
  scored = [r for r in rows if "samples/label_accuracy" in r]
  assert len(scored) == 1 and 0 <= scored[0]["samples/label_accuracy_chance"] <= 1
  assert (smoke_run / "samples" / "step_6.png").exists()
  r = _cli(f"--workdir={smoke_run}", "--config.num_train_steps=8", "--config.evals=()")   # evals: resume-safe
  assert "done: step 8/8; this run trained 2 steps" in r.stdout + r.stderr
  rows = [json.loads(line) for line in open(smoke_run / "metrics.jsonl")]
  assert any(row.get("step") == 8 and "train/g_loss" in row for row in rows)
