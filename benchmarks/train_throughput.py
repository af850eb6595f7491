r"""Throughput of the full DDPM train step (the CIFAR-10 U-Net, 35.7M params) on this machine.

  python benchmarks/train_throughput.py [--batch 8] [--steps 5] [--variants fast_conv,default]

For each variant (a subprocess, because XLA flags are read when JAX starts) it prints compile time (wall and
the process's CPU time, which a busy machine disturbs less; and the number of fused kernels XLA emitted, which
is what the compile time grows with: the step compiled in 26.7 s of CPU with 5,913 kernels before the trainer
took one global norm per group instead of per-leaf finite checks and a second norm, ~19 s with 3,109 after),
steady-state images/s of the whole compiled step (forward, backward, clipping, Adam, EMA), the step's
FLOPs from XLA's cost analysis and the achieved GFLOP/s, beside the float32 matmul GFLOP/s of the same
process (a 2048^3 matmul), as a table.
  fast_conv: jaxgen's default on CPU (XLA_FLAGS gets --xla_cpu_experimental_ynn_fusion_type=-individual_convolution)
  default:   XLA's own defaults
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(batch: int, steps: int) -> dict:
  sys.path.insert(0, ROOT)
  import jax
  import jax.numpy as jnp
  import numpy as np
  from experiments.ddpm_cifar import get_config
  from jaxgen.diffusion.build import make_ddpm
  from jaxgen.nn.unet import count_params
  from jaxgen.train import parallel, trainer

  # Matmul reference: best of 5 after a warm-up.
  a = jax.random.normal(jax.random.PRNGKey(0), (2048, 2048), jnp.float32)
  mm = jax.jit(lambda x: x @ x)
  mm(a).block_until_ready()
  best = min(_timed(lambda: mm(a).block_until_ready()) for _ in range(5))
  matmul_gflops = 2 * 2048 ** 3 / best / 1e9

  config = get_config("paper")
  config.batch_size = batch
  family = make_ddpm(config)
  mesh = parallel.make_data_mesh()
  images = np.random.default_rng(0).integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)
  batch_arr = parallel.global_batch({"image": images}, mesh)
  state = trainer.create_train_state(family, config, mesh, batch_arr)
  n_params = count_params(state.params)
  t0, c0 = time.perf_counter(), _cpu_s()
  compiled = trainer.make_train_step(family, mesh).lower(state, batch_arr).compile()
  compile_s, compile_cpu_s = time.perf_counter() - t0, _cpu_s() - c0
  kernels = len(re.findall(r"^\s*\S+ = \S+ fusion\(", compiled.as_text(), re.M))
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", float("nan")))
  for _ in range(2):   # warm-up
    state, m = compiled(state, batch_arr)
  jax.block_until_ready(m)
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    state, m = compiled(state, batch_arr)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t)
  step_s = float(np.median(times))
  return {"params": n_params, "batch": batch, "compile_s": compile_s, "compile_cpu_s": compile_cpu_s,
          "kernels": kernels, "step_s": step_s,
          "images_per_s": batch / step_s, "step_gflop": flops / 1e9, "achieved_gflops": flops / step_s / 1e9,
          "matmul_gflops": matmul_gflops, "devices": str(jax.devices()[0].platform) + f" x{jax.device_count()}",
          "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}


def _cpu_s():
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


def _timed(fn):
  t = time.perf_counter()
  fn()
  return time.perf_counter() - t


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--variants", default="fast_conv,default")
  p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  a = p.parse_args()
  if a.child:
    print("RESULT " + json.dumps(measure(a.batch, a.steps)), flush=True)
    return
  rows = []
  for variant in a.variants.split(","):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    flags = env.get("XLA_FLAGS", "").replace("--xla_cpu_experimental_ynn_fusion_type=-individual_convolution", "")
    if variant == "fast_conv":
      flags += " --xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
    elif variant != "default":
      raise SystemExit(f"unknown variant {variant!r}; choose from fast_conv, default")
    env["XLA_FLAGS"] = flags.strip()
    out = subprocess.run([sys.executable, __file__, "--child", f"--batch={a.batch}", f"--steps={a.steps}"],
                         env=env, capture_output=True, text=True)
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    if out.returncode or not line:
      raise SystemExit(f"variant {variant} failed:\n{out.stderr[-3000:]}")
    rows.append((variant, json.loads(line[0][7:])))
  r0 = rows[0][1]
  print(f"DDPM CIFAR-10 U-Net ({r0['params']:,} params), full train step, float32, batch {r0['batch']}, "
        f"{r0['devices']}, median of {a.steps} steps")
  print(f"| variant | compile s | compile CPU s | XLA kernels | step s | images/s | step GFLOP (XLA) | achieved GFLOP/s "
        f"| matmul GFLOP/s | % of matmul |")
  print(f"|---|---|---|---|---|---|---|---|---|---|")
  for variant, r in rows:
    print(f"| {variant} | {r['compile_s']:.1f} | {r['compile_cpu_s']:.1f} | {r['kernels']:,} | {r['step_s']:.2f} | {r['images_per_s']:.2f} | {r['step_gflop']:.1f} | "
          f"{r['achieved_gflops']:.1f} | {r['matmul_gflops']:.1f} | {100 * r['achieved_gflops'] / r['matmul_gflops']:.0f}% |")


if __name__ == "__main__":
  main()
