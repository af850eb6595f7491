r"""Compile time of a Glow train step against depth: steps stacked with lax.scan (jaxgen's `Repeat`) vs unrolled.

  python benchmarks/flow_compile_time.py [--depths 4,8,16,32] [--hidden 64] [--conv-impls matmul,xla]

The model is the digits Glow quick model (8x8x1, L=2 levels, logit preprocessing, 17 bins) with K = depth steps
per level, built twice: with `Repeat` (one step's program, run by lax.scan over stacked parameters) and with an
unrolled `Chain` of K copies, and with each convolution implementation of jaxgen.nn.conditioners ('matmul' is
the CPU default, 'xla' the native convolution). For each it times tracing + XLA compilation of the whole gradient
step (jit(value_and_grad(loss)).lower(...).compile()) and one compiled step, and prints a table.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(depth: int, hidden: int, scanned: bool, conv_impl: str = "auto"):
  from jaxgen.flows.bijector import Chain, Repeat
  from jaxgen.flows.glow import glow_step
  from jaxgen.flows.model import FlowModel
  from jaxgen.flows.multiscale import Level, MultiScale
  from jaxgen.nn.conditioners import ConvConditioner
  net = functools.partial(ConvConditioner, hidden, num_blocks=0, conv_impl=conv_impl)
  step = glow_step(lambda out: net(out_channels=out))
  stack = Repeat(step, depth) if scanned else Chain((step,) * depth)
  levels = (Level(pre=None, squeeze=True, post=stack, split=True),
            Level(pre=None, squeeze=True, post=stack, split=False))
  return FlowModel(MultiScale(levels, (8, 8, 1), learned_prior=True), event_shape=(8, 8, 1),
                   preprocessing="logit", num_bins=17)


def measure(depth: int, hidden: int, scanned: bool, conv_impl: str, batch: int = 64) -> dict:
  import jax
  import numpy as np
  from jaxgen.nn.unet import count_params
  model = build(depth, hidden, scanned, conv_impl)
  images = np.random.default_rng(0).integers(0, 256, size=(batch, 8, 8, 1)).astype(np.uint8)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), {"image": images})
  step = jax.jit(jax.value_and_grad(lambda p, x, k: model.loss(p, {"image": x}, k)[0]))
  key = jax.random.PRNGKey(1)
  t0 = time.perf_counter()
  compiled = step.lower(params, images, key).compile()
  compile_s = time.perf_counter() - t0
  jax.block_until_ready(compiled(params, images, key))
  t0 = time.perf_counter()
  for _ in range(5):
    jax.block_until_ready(compiled(params, images, key))
  return {"compile_s": compile_s, "step_ms": (time.perf_counter() - t0) / 5 * 1e3, "params": count_params(params)}


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--depths", default="4,8,16,32", help="comma-separated K (steps per level)")
  ap.add_argument("--hidden", type=int, default=64)
  ap.add_argument("--conv-impls", default="matmul,xla", help="comma-separated: matmul, xla")
  args = ap.parse_args()
  impls = args.conv_impls.split(",")
  if any(i not in ("matmul", "xla") for i in impls):
    sys.exit(f"--conv-impls={args.conv_impls!r}: choose from matmul, xla")
  try:
    depths = [int(d) for d in args.depths.split(",")]
  except ValueError:
    sys.exit(f"--depths={args.depths!r}: give comma-separated positive integers, e.g. 4,8,16")
  if any(d < 1 for d in depths):
    sys.exit(f"--depths={args.depths!r}: every depth must be >= 1")
  sys.path.insert(0, ROOT)
  import jax
  print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} CPU cores; batch 64; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", flush=True)
  print("| conv | K per level | params | compile s (scan) | compile s (unrolled) | step ms (scan) | "
        "step ms (unrolled) |")
  print("|---|---|---|---|---|---|---|")
  for impl in impls:
    for d in depths:
      s, u = measure(d, args.hidden, True, impl), measure(d, args.hidden, False, impl)
      print(f"| {impl} | {d} | {s['params']:,} | {s['compile_s']:.1f} | {u['compile_s']:.1f} | {s['step_ms']:.1f} | "
            f"{u['step_ms']:.1f} |", flush=True)


if __name__ == "__main__":
  main()
