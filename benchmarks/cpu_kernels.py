r"""The kernels under the U-Net train step on this CPU, as XLA runs them: what a faster step would have to use.

  python benchmarks/cpu_kernels.py [--flags "XLA flags"]

Prints one table (GFLOP/s or ms, best-of-7 medians) for:
  dot        2-D matmuls at the shapes of a 3x3 convolution written as im2col (M = B*H*W, K = 9*C, N = C) and of
             its two gradients, float32, bfloat16 -> bfloat16, bfloat16 -> float32 (preferred_element_type)
  conv       lax.conv 3x3 SAME at (8, 32, 32, 128) -> 128, forward and forward + backward, float32 and bfloat16
  im2col     the same convolution as im2col + one bfloat16 -> float32 matmul with a hand-written VJP (input
             gradient as the im2col convolution of the output gradient with the flipped kernel), and the cost of
             building the im2col matrix alone
  memory     x*2 over 38 MB into a fresh output vs a donated one (the page-fault cost of fresh buffers)
Run it with jaxgen's default CPU flag (the default here) and compare with --flags "" for XLA's own defaults.
docs/performance.md has the figures and what they mean for the train step.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def best(fn, *args, reps: int = 7) -> float:
  import jax
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return sorted(times)[reps // 2]


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--flags", default=None, help="XLA_FLAGS for this run (default: jaxgen's CPU default)")
  a = p.parse_args()
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from jaxgen.train.runtime import CPU_FAST_CONV_FLAG
  os.environ["XLA_FLAGS"] = CPU_FAST_CONV_FLAG if a.flags is None else a.flags
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax import lax
  from jaxgen.nn.conditioners import im2col_same
  rng = np.random.default_rng(0)
  f32, bf16 = jnp.float32, jnp.bfloat16
  print(f"XLA_FLAGS={os.environ['XLA_FLAGS']!r}, jax {jax.__version__}, {jax.devices()[0].device_kind}\n")

  print("| dot M x K x N | what | f32 GFLOP/s | bf16->bf16 | bf16->f32 |")
  print("|---|---|---:|---:|---:|")
  for (m, k, n), what in [((2048, 2048, 2048), "square"), ((8192, 1152, 128), "im2col forward, B8 32x32x128"),
                          ((1152, 8192, 128), "kernel gradient (K = B*H*W)"),
                          ((8192, 128, 1152), "input gradient as dy @ W^T (K = C)")]:
    row = []
    for dt, out in ((f32, None), (bf16, None), (bf16, f32)):
      x = jnp.asarray(rng.standard_normal((m, k)), dt)
      y = jnp.asarray(rng.standard_normal((k, n)), dt)
      fn = jax.jit(lambda x, y, out=out: jnp.dot(x, y, preferred_element_type=out))
      row.append(f"{2 * m * k * n / best(fn, x, y) / 1e9:.0f}")
    print(f"| {m} x {k} x {n} | {what} | " + " | ".join(row) + " |", flush=True)

  b, h, c = 8, 32, 128
  flops = 2 * b * h * h * c * c * 9
  conv = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def cols(x):  # jaxgen's im2col (the flows' 'matmul' convolution), as a (B*H*W, 9*C) matrix
    return im2col_same(x, 3, 3).reshape(-1, 9 * x.shape[-1])

  @jax.custom_vjp
  def conv_im2col(x, w):
    out = jnp.dot(cols(x.astype(bf16)), w.reshape(-1, w.shape[-1]).astype(bf16), preferred_element_type=f32)
    return out.reshape(x.shape[:3] + (w.shape[-1],))

  def fwd(x, w):
    return conv_im2col(x, w), (x, w)

  def bwd(res, dy):
    x, w = res
    dyb = dy.astype(bf16)
    w_flip = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2).reshape(-1, w.shape[2]).astype(bf16)
    dx = jnp.dot(cols(dyb), w_flip, preferred_element_type=f32).reshape(x.shape)
    dw = jnp.dot(cols(x.astype(bf16)).T, dyb.reshape(-1, w.shape[-1]), preferred_element_type=f32)
    return dx, dw.reshape(w.shape)
  conv_im2col.defvjp(fwd, bwd)

  x = jnp.asarray(rng.standard_normal((b, h, h, c)), f32)
  w = jnp.asarray(rng.standard_normal((3, 3, c, c)) * 0.05, f32)
  g_ref = jax.grad(lambda x, w: jnp.sum(conv(x, w) ** 2), (0, 1))(x, w)
  g_new = jax.grad(lambda x, w: jnp.sum(conv_im2col(x, w) ** 2), (0, 1))(x, w)
  err = max(float(jnp.abs(p - q).max() / jnp.abs(p).max()) for p, q in zip(g_ref, g_new))
  print(f"\n| 3x3 conv (8, 32, 32, 128) -> 128 | forward GFLOP/s | forward + backward GFLOP/s |")
  print("|---|---:|---:|")
  for name, fn, dt in (("lax.conv float32", conv, f32), ("lax.conv bfloat16", conv, bf16),
                       (f"im2col bf16->f32, custom VJP (grad rel. error {err:.1e})", conv_im2col, f32)):
    xx, ww = x.astype(dt), w.astype(dt)
    fw = best(jax.jit(fn), xx, ww)
    gr = best(jax.jit(jax.grad(lambda x, w: jnp.sum(fn(x, w).astype(f32) ** 2), (0, 1))), xx, ww)
    print(f"| {name} | {flops / fw / 1e9:.0f} | {3 * flops / gr / 1e9:.0f} |", flush=True)
  t_cols = best(jax.jit(cols), x.astype(bf16))
  t_dot = best(jax.jit(lambda p, q: jnp.dot(p, q, preferred_element_type=f32)), jax.jit(cols)(x.astype(bf16)),
               w.reshape(-1, c).astype(bf16))
  t_conv = best(jax.jit(conv), x, w)
  print(f"\nim2col of (8, 32, 32, 128) bf16 alone: {t_cols * 1e3:.1f} ms; its matmul: {t_dot * 1e3:.1f} ms; "
        f"lax.conv float32 forward: {t_conv * 1e3:.1f} ms")

  big = jnp.asarray(rng.standard_normal(9 * b * h * h * c), f32)
  fresh = best(jax.jit(lambda v: v * 2), big)
  donated_fn = jax.jit(lambda v: v * 2, donate_argnums=0)
  state = [donated_fn(big + 0)]
  jax.block_until_ready(state[0])

  def step():
    state[0] = donated_fn(state[0])
    return state[0]
  donated = best(step)
  print(f"x*2 over {big.nbytes / 1e6:.0f} MB: fresh output {fresh * 1e3:.1f} ms, donated (in place) "
        f"{donated * 1e3:.1f} ms")


if __name__ == "__main__":
  main()
