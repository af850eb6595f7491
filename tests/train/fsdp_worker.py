"""A subprocess helper for the FSDP tests (the device count is fixed when JAX starts):

  python tests/train/fsdp_worker.py train --devices 8 --root R --out result.json
      trains the GAN toy model (256-wide MLPs) for a few steps twice through jaxgen.train.run: replicated
      (R/replicated) and with parallel.strategy='fsdp' (R/fsdp); writes the largest parameter difference, the
      per-device bytes of both states and the shardings of the FSDP one, and R/fsdp_params.npz
  python tests/train/fsdp_worker.py restore --devices 4 --root R --out restored.npz
      load_run(R/fsdp) on this device count: its params, EMA and optimizer state as arrays
"""
import argparse
import json
import os
import sys

STEPS = 4


def config(strategy, model_axis=1):
  from experiments.gan_toy2d import get_config
  c = get_config("smoke")
  c.model.update(g_hidden=(256, 256), d_hidden=(256, 256))
  c.update(batch_size=64, num_train_steps=STEPS, checkpoint_every=2, log_every=2, sample_every=0, eval_every=0,
           evals=(), tensorboard=False)
  c.parallel.update(strategy=strategy, min_shard_size=1024, model_axis=model_axis)   # the 16x256 latent layer too
  return c


def arrays(state):
  import jax
  import numpy as np
  leaves = jax.tree_util.tree_leaves_with_path((state.params, state.ema_params, state.opt_state))
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves}


def main():
  p = argparse.ArgumentParser()
  p.add_argument("mode", choices=("train", "restore"))
  p.add_argument("--devices", type=int, required=True)
  p.add_argument("--root", required=True)
  p.add_argument("--out", required=True)
  a = p.parse_args()
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
  import jax
  jax.config.update("jax_num_cpu_devices", a.devices)
  import numpy as np
  from jaxgen.train import parallel, run
  assert jax.device_count() == a.devices
  if a.mode == "train":
    runs = {"replicated": ("replicated", 1), "fsdp": ("fsdp", 1), "fsdp_2d": ("fsdp", 2)}
    states = {name: run.run(config(*args), os.path.join(a.root, name), experiment="experiments.gan_toy2d")
              for name, args in runs.items()}
    rep, fsdp, fsdp_2d = (arrays(states[n]) for n in runs)
    diff = max(float(np.max(np.abs(rep[k].astype(np.float64) - fsdp[k]))) for k in rep)
    diff_2d = max(float(np.max(np.abs(rep[k].astype(np.float64) - fsdp_2d[k]))) for k in rep)
    scale = max(float(np.max(np.abs(v))) for v in rep.values())
    bytes_ = {s: parallel.bytes_per_device((st.params, st.ema_params, st.opt_state)) for s, st in states.items()}
    specs = {jax.tree_util.keystr(k): str(v.sharding.spec)
             for k, v in jax.tree_util.tree_leaves_with_path(states["fsdp"].params)}
    np.savez(os.path.join(a.root, "fsdp_params.npz"), **fsdp)
    mesh_2d = str(dict(states["fsdp_2d"].params["generator"]["params"]["dense_1"]["kernel"].sharding.mesh.shape))
    json.dump({"max_abs_diff": diff, "max_abs_diff_2d": diff_2d, "mesh_2d": mesh_2d, "max_abs_param": scale, "bytes": bytes_, "specs": specs,
               "step": int(states["fsdp"].step)}, open(a.out, "w"))
  else:
    r = run.load_run(os.path.join(a.root, "fsdp"))
    big = max(jax.tree.leaves(r.state.params), key=lambda x: x.size)
    np.savez(a.out, __step=r.step, __spec=str(big.sharding.spec), __devices=len(big.sharding.device_set),
             **arrays(r.state))


if __name__ == "__main__":
  main()
