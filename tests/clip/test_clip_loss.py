"""CLIP's loss: equal to a float64 numpy computation (one-hot and duplicate-caption targets, the clip of the
logit scale), the effect of duplicate-caption targets, and the same loss and gradients for the same global
batch on 1 and 8 simulated devices (jit with a sharded batch, and shard_map with axis_name)."""
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.clip.loss import MAX_LOGIT_SCALE, clip_loss

sys.path.insert(0, os.path.dirname(__file__))
from sharded_loss_worker import batch   # noqa: E402  (the worker's fixed global batch)

WORKER = os.path.join(os.path.dirname(__file__), "sharded_loss_worker.py")


def np_clip_loss(image, text, logit_scale, ids=None):
  """float64 oracle: (loss, accuracy_i2t, accuracy_t2i)."""
  image, text = np.asarray(image, np.float64), np.asarray(text, np.float64)
  image = image / np.linalg.norm(image, axis=1, keepdims=True)
  text = text / np.linalg.norm(text, axis=1, keepdims=True)
  logits = min(math.exp(logit_scale), 100.0) * image @ text.T
  b = len(image)
  pos = np.eye(b) if ids is None else np.array([[float((ids[i] == ids[j]).all()) for j in range(b)] for i in range(b)])
  target = pos / pos.sum(1, keepdims=True)

  def ce(lg):   # rows of lg against the rows of target
    log_p = lg - lg.max(1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
    return -(target * log_p).sum(1).mean()

  acc = lambda lg: np.mean([pos[i, np.argmax(lg[i])] for i in range(b)])   # noqa: E731
  return 0.5 * (ce(logits) + ce(logits.T)), acc(logits), acc(logits.T)


@pytest.mark.parametrize("use_ids", [False, True])
@pytest.mark.parametrize("logit_scale", [math.log(1 / 0.07), 0.3, math.log(250.0)])
def test_loss_equals_numpy(use_ids, logit_scale):
  image, text, ids = batch()
  loss, metrics = jax.jit(lambda i, t, s, d: clip_loss(i, t, s, text_ids=d))(image, text, logit_scale,
                                                                           ids if use_ids else None)
  want, acc_i2t, acc_t2i = np_clip_loss(image, text, logit_scale, ids if use_ids else None)
  np.testing.assert_allclose(float(loss), want, rtol=1e-5)
  assert float(metrics["accuracy_i2t"]) == acc_i2t and float(metrics["accuracy_t2i"]) == acc_t2i
  np.testing.assert_allclose(float(metrics["logit_scale"]), min(math.exp(logit_scale), MAX_LOGIT_SCALE), rtol=1e-6)


def test_gradients_equal_finite_differences_and_stop_at_the_clip():
  image, text, ids = batch()
  f = lambda i, t, s: clip_loss(i, t, s, text_ids=ids)[0]   # noqa: E731
  d_image, d_text, d_scale = jax.grad(f, (0, 1, 2))(image, text, 1.5)
  h = 1e-5
  for arr, grad, which in ((image, d_image, 0), (text, d_text, 1)):
    for (r, c) in ((0, 0), (3, 5), (15, 7)):
      plus, minus = [a.astype(np.float64) for a in (image, text)], [a.astype(np.float64) for a in (image, text)]
      plus[which][r, c] += h
      minus[which][r, c] -= h
      fd = (np_clip_loss(*plus, 1.5, ids)[0] - np_clip_loss(*minus, 1.5, ids)[0]) / (2 * h)
      np.testing.assert_allclose(float(grad[r, c]), fd, rtol=1e-3, atol=1e-6)
  fd = (np_clip_loss(image, text, 1.5 + h, ids)[0] - np_clip_loss(image, text, 1.5 - h, ids)[0]) / (2 * h)
  np.testing.assert_allclose(float(d_scale), fd, rtol=1e-3)
  assert float(jax.grad(f, 2)(image, text, math.log(250.0))) == 0.0   # exp(s) clipped at 100: no gradient


def test_duplicate_captions_change_the_accuracy_not_the_loss_of_identical_embeddings():
  image, text, ids = batch()
  _, group = np.unique(ids, axis=0, return_inverse=True)
  group = group.ravel()
  first = np.array([np.flatnonzero(group == g)[0] for g in group])
  text = text[first]                        # a deterministic text encoder: identical captions, identical embeddings
  f = lambda i, t, s, d: clip_loss(i, t, s, text_ids=d)   # noqa: E731
  (l1, m1), g1 = jax.value_and_grad(f, (0, 1, 2), has_aux=True)(image, text, 2.0, None)
  (l2, m2), g2 = jax.value_and_grad(f, (0, 1, 2), has_aux=True)(image, text, 2.0, jnp.asarray(ids))
  np.testing.assert_allclose(float(l1), float(l2), rtol=1e-6)
  np.testing.assert_allclose(g1[0], g2[0], atol=1e-6)      # images
  np.testing.assert_allclose(float(g1[2]), float(g2[2]), rtol=1e-5)
  by_caption = lambda g: np.stack([np.asarray(g)[group == k].sum(0) for k in range(group.max() + 1)])   # noqa: E731
  np.testing.assert_allclose(by_caption(g1[1]), by_caption(g2[1]), atol=1e-6)   # what reaches the text encoder
  # A copy of caption 0 sits at rows 3, 9, 14: a hit on it counts with text_ids only.
  assert float(m2["accuracy_t2i"]) > float(m1["accuracy_t2i"])
  want = np_clip_loss(image, text, 2.0, ids)
  np.testing.assert_allclose([float(l2), float(m2["accuracy_i2t"]), float(m2["accuracy_t2i"])], want, rtol=1e-5)


def test_bad_shapes_are_named():
  image, text, ids = batch()
  with pytest.raises(ValueError, match=r"\(16, 7\)"):
    clip_loss(image, text[:, :7], 0.0)
  with pytest.raises(ValueError, match=r"\(15, 4\)"):
    clip_loss(image, text, 0.0, text_ids=ids[:15])


def test_one_and_eight_devices_give_the_same_loss_and_gradients(tmp_path):
  out = str(tmp_path / "results.npz")
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  flags = [f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f]
  env["XLA_FLAGS"] = " ".join(flags + ["--xla_force_host_platform_device_count=8"])
  proc = subprocess.run([sys.executable, WORKER, "--out", out], env=env, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
  r = np.load(out)
  keys = ("loss", "accuracy_i2t", "accuracy_t2i", "logit_scale", "d_image", "d_text", "d_logit_scale")
  for tag, ids in (("none", None), ("ids", r["ids"])):
    want = np_clip_loss(r["image"], r["text"], float(r["logit_scale"]), ids)
    np.testing.assert_allclose(float(r[f"{tag}/jit1/loss"]), want[0], rtol=1e-5)
    assert float(np.abs(r[f"{tag}/jit1/d_image"]).max()) > 1e-3   # the gradients are not trivially equal
    for way in ("jit8", "shard_map8"):
      for k in keys:
        np.testing.assert_allclose(r[f"{tag}/{way}/{k}"], r[f"{tag}/jit1/{k}"], atol=1e-5, rtol=1e-5,
                                   err_msg=f"{tag}/{way}/{k}")
