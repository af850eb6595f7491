"""CLIP's loss and its gradients on a fixed global batch, on a ('data',) mesh of 1 and of 8 devices: a
subprocess helper for tests/clip/test_clip_loss.py (XLA's device count is fixed when a process starts).

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/clip/sharded_loss_worker.py --out r.npz

Saves, for ids in ('none', 'ids') and way in ('jit1', 'jit8', 'shard_map8'): loss, accuracies and the
gradients with respect to image_emb, text_emb and logit_scale, plus the batch itself.
"""
import argparse
import os
import sys

GLOBAL_BATCH, DIM, LENGTH = 16, 8, 4


def batch():
  import numpy as np
  rng = np.random.default_rng(0)
  image = rng.normal(size=(GLOBAL_BATCH, DIM)).astype(np.float32)
  text = (0.5 * image + rng.normal(size=(GLOBAL_BATCH, DIM))).astype(np.float32)
  ids = rng.integers(1, 5, size=(GLOBAL_BATCH, LENGTH)).astype(np.int32)
  ids[[3, 9, 14]] = ids[0]           # three copies of caption 0, on different devices
  ids[[7, 8]] = ids[5]               # and of caption 5
  return image, text, ids


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--out", required=True)
  a = p.parse_args()
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
  import jax
  import numpy as np
  from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
  from jaxgen.clip.loss import clip_loss

  assert jax.device_count() == 8, jax.devices()
  image, text, ids = batch()
  scale = np.float32(np.log(1 / 0.07))
  out = dict(image=image, text=text, ids=ids, logit_scale=scale)

  def grad_fn(use_ids, axis_name=None):
    def f(i, t, s, ids):
      return clip_loss(i, t, s, text_ids=ids if use_ids else None, axis_name=axis_name)
    return jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True)

  for use_ids in (False, True):
    tag = "ids" if use_ids else "none"
    for n in (1, 8):
      mesh = Mesh(np.asarray(jax.devices()[:n]), ("data",))
      rows, rep = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
      args = (jax.device_put(image, rows), jax.device_put(text, rows), jax.device_put(scale, rep),
              jax.device_put(ids, rows))
      assert len(args[0].sharding.device_set) == n
      fn = jax.jit(grad_fn(use_ids), in_shardings=(rows, rows, rep, rows))
      (loss, metrics), grads = fn(*args)
      _save(out, f"{tag}/jit{n}", loss, metrics, grads)
    mesh = Mesh(np.asarray(jax.devices()), ("data",))
    local = jax.shard_map(lambda i, t, s, d: clip_loss(i, t, s, text_ids=d if use_ids else None, axis_name="data"),
                          mesh=mesh, in_specs=(P("data"), P("data"), P(), P("data")), out_specs=P())
    fn = jax.jit(jax.value_and_grad(local, argnums=(0, 1, 2), has_aux=True))
    (loss, metrics), grads = fn(image, text, scale, ids)
    _save(out, f"{tag}/shard_map8", loss, metrics, grads)
  np.savez(a.out, **out)


def _save(out, key, loss, metrics, grads):
  import numpy as np
  out[f"{key}/loss"] = np.asarray(loss)
  for k, v in metrics.items():
    out[f"{key}/{k}"] = np.asarray(v)
  for k, g in zip(("d_image", "d_text", "d_logit_scale"), grads):
    out[f"{key}/{k}"] = np.asarray(g)


if __name__ == "__main__":
  main()
