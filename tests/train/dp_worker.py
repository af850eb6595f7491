"""Run a few data-parallel DDPM train steps and save the params: a subprocess helper for the parallel tests.

  python tests/train/dp_worker.py --out params.npz [--devices 8] [--num_processes 2 --process_id 0 --port P]

Each process feeds its own rows of a fixed global batch (process p takes rows p*B/P .. (p+1)*B/P), as a
multi-host job does, so every configuration must reproduce the single-device parameters.
"""
import argparse
import os
import sys

GLOBAL_BATCH = 16


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--out", required=True)
  p.add_argument("--devices", type=int, default=1)
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--num_processes", type=int, default=1)
  p.add_argument("--process_id", type=int, default=0)
  p.add_argument("--port", type=int, default=0)
  a = p.parse_args()
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
  import jax
  jax.config.update("jax_num_cpu_devices", a.devices)
  if a.num_processes > 1:
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{a.port}", num_processes=a.num_processes,
                               process_id=a.process_id, initialization_timeout=60)
  import numpy as np
  from experiments.ddpm_cifar import get_config
  from jaxgen.diffusion.build import make_ddpm
  from jaxgen.train import parallel, trainer

  config = get_config("smoke")
  config.batch_size = GLOBAL_BATCH
  family = make_ddpm(config)
  mesh = parallel.make_data_mesh()
  assert mesh.devices.size == a.devices * a.num_processes, mesh
  rows = GLOBAL_BATCH // a.num_processes
  lo = a.process_id * rows

  def local_batch(step):
    rng = np.random.default_rng(step)
    images = rng.integers(0, 256, size=(GLOBAL_BATCH, 8, 8, 1), dtype=np.uint8)
    return {"image": images[lo:lo + rows]}

  batch = parallel.global_batch(local_batch(0), mesh)
  state = trainer.create_train_state(family, config, mesh, batch)
  step_fn = trainer.make_train_step(family, mesh)
  losses = []
  for s in range(a.steps):
    state, metrics = step_fn(state, parallel.global_batch(local_batch(s), mesh))
    losses.append(float(parallel.fetch(metrics["loss"])))
  params = parallel.fetch(state.params)
  ema = parallel.fetch(state.ema_params)
  if a.process_id == 0:
    leaves = jax.tree_util.tree_leaves_with_path(params)
    np.savez(a.out, losses=np.array(losses), step=int(parallel.fetch(state.step)),
             **{"p" + jax.tree_util.keystr(k): v for k, v in leaves},
             **{"e" + jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(ema)})
  if a.num_processes > 1:
    jax.distributed.shutdown()


if __name__ == "__main__":
  main()
