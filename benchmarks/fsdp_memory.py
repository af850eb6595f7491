"""Bytes of the DDPM train state (params, EMA, Adam moments) per device, replicated vs FSDP, read from the
shardings jaxgen would give it on N devices (jax.eval_shape: nothing is allocated or compiled).

  python benchmarks/fsdp_memory.py [--devices 8] [--preset paper]
"""
import argparse


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--devices", type=int, default=8)
  p.add_argument("--preset", default="paper")
  a = p.parse_args()
  import jax
  jax.config.update("jax_num_cpu_devices", a.devices)
  import numpy as np
  from experiments.ddpm_cifar import get_config
  from jaxgen.data import example_batch
  from jaxgen.diffusion.build import make_ddpm
  from jaxgen.train import parallel, trainer
  print(f"| preset | strategy | devices | state MiB (total) | MiB per device | ratio | tensors sharded |")
  print("|---|---|---:|---:|---:|---:|---:|")
  for strategy in ("replicated", "fsdp"):
    config = get_config(a.preset)
    config.parallel.strategy = strategy
    family = make_ddpm(config)
    mesh = parallel.make_mesh(config)
    abstract = trainer.abstract_train_state(family, config, mesh, example_batch(config))
    leaves = [x for x in jax.tree.leaves((abstract.params, abstract.ema_params, abstract.opt_state))]
    total = sum(x.size * x.dtype.itemsize for x in leaves)
    local = sum(int(np.prod(x.sharding.shard_shape(x.shape))) * x.dtype.itemsize for x in leaves)
    sharded = sum(x.sharding.shard_shape(x.shape) != x.shape for x in leaves)
    print(f"| {a.preset} | {strategy} | {a.devices} | {total / 2**20:.1f} | {local / 2**20:.1f} | "
          f"{total / local:.2f} | {sharded} of {len(leaves)} |")


if __name__ == "__main__":
  main()
