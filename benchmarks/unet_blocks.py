r"""Two U-Net candidates of the performance issue, measured alone: fused GroupNorm+SiLU and the attention's form.

  python benchmarks/unet_blocks.py [--batch 8,32] [--reps 7]

Prints the forward and forward + backward time (best-of-N medians, ms) of:
  groupnorm  GroupNorm(32) + SiLU at the U-Net's largest activation (B, 32, 32, 128) and at (B, 16, 16, 256):
             flax's nn.GroupNorm then nn.swish (what jaxgen runs), the same written as one jnp expression
             (one-pass statistics), and that expression with a hand-written VJP that recomputes the normalised
             activation in the backward pass instead of saving it (one fused pass each way)
  attention  the 16x16 self-attention block (B, 16, 16, 256), single head: jaxgen's AttnBlock (three NIN
             projections, einsum, float32 softmax), the same with q, k, v as one (C, 3C) matmul, and
             jax.nn.dot_product_attention (XLA implementation) on the fused projections
Each variant's output and gradients are checked against jaxgen's module first (the max relative error is
printed), so a faster row is a correct one. docs/performance.md has the figures and what they mean for the
train step (how many of each the step runs, against its time).
"""
from __future__ import annotations

import argparse
import os
import sys


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", default="8,32", help="comma-separated batch sizes")
  p.add_argument("--reps", type=int, default=7)
  a = p.parse_args()
  batches = [int(b) for b in a.batch.split(",")]
  if not batches or min(batches) < 1:
    p.error(f"--batch={a.batch!r}: give positive batch sizes, e.g. 8,32")
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from benchmarks.cpu_kernels import best   # best-of-N median timing, shared with the kernel benchmark
  from jaxgen.train import runtime
  runtime.set_xla_cpu_flags()
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jaxgen.nn.layers import AttnBlock
  print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, jax {jax.__version__}, {jax.devices()[0].device_kind}\n")
  groups, eps = 32, 1e-6
  rng = np.random.default_rng(0)

  def relerr(ref, new):
    leaves = zip(jax.tree_util.tree_leaves(ref), jax.tree_util.tree_leaves(new))
    return max(float(jnp.abs(r - n).max() / (jnp.abs(r).max() + 1e-30)) for r, n in leaves)

  # --- GroupNorm + SiLU -----------------------------------------------------------------------------------
  flax_gn = nn.GroupNorm(groups, epsilon=eps)

  def gn_flax(x, scale, bias):
    return nn.swish(flax_gn.apply({"params": {"scale": scale, "bias": bias}}, x))

  def stats(x):
    b, hh, ww, c = x.shape
    xr = x.reshape(b, hh * ww, groups, c // groups)
    mean = jnp.mean(xr, (1, 3), keepdims=True)
    var = jnp.maximum(jnp.mean(jnp.square(xr), (1, 3), keepdims=True) - jnp.square(mean), 0.0)
    return xr, mean, jax.lax.rsqrt(var + eps)

  def gn_jnp(x, scale, bias):
    xr, mean, rstd = stats(x)
    y = ((xr - mean) * rstd).reshape(x.shape) * scale + bias
    return y * jax.nn.sigmoid(y)

  @jax.custom_vjp
  def gn_fused(x, scale, bias):
    return gn_jnp(x, scale, bias)

  def gn_fwd(x, scale, bias):
    return gn_jnp(x, scale, bias), (x, scale, bias)

  def gn_bwd(res, dz):
    x, scale, bias = res
    xr, mean, rstd = stats(x)
    xhat = ((xr - mean) * rstd).reshape(x.shape)
    y = xhat * scale + bias
    s = jax.nn.sigmoid(y)
    dy = dz * s * (1 + y * (1 - s))
    dxhat = (dy * scale).reshape(xr.shape)
    xh = xhat.reshape(xr.shape)
    dx = rstd * (dxhat - jnp.mean(dxhat, (1, 3), keepdims=True) - xh * jnp.mean(dxhat * xh, (1, 3), keepdims=True))
    return dx.reshape(x.shape), jnp.sum(dy * xhat, (0, 1, 2)), jnp.sum(dy, (0, 1, 2))
  gn_fused.defvjp(gn_fwd, gn_bwd)

  print("| GroupNorm(32) + SiLU | variant | rel. error (out, grads) | forward ms | forward + backward ms |")
  print("|---|---|---:|---:|---:|")
  for b in batches:
    for hw, c in ((32, 128), (16, 256)):
      x = jnp.asarray(rng.standard_normal((b, hw, hw, c)) * 2 + 0.5, jnp.float32)
      scale = jnp.asarray(1 + 0.1 * rng.standard_normal(c), jnp.float32)
      bias = jnp.asarray(0.1 * rng.standard_normal(c), jnp.float32)
      w = jnp.asarray(rng.standard_normal(x.shape), jnp.float32)  # a fixed cotangent through a weighted sum
      ref_out = gn_flax(x, scale, bias)
      ref_grad = jax.grad(lambda *v: jnp.sum(gn_flax(*v) * w), (0, 1, 2))(x, scale, bias)
      for name, fn in (("flax nn.GroupNorm + nn.swish (jaxgen)", gn_flax), ("one jnp expression", gn_jnp),
                       ("jnp + hand-written VJP (recompute)", gn_fused)):
        grad = jax.jit(jax.grad(lambda *v, fn=fn: jnp.sum(fn(*v) * w), (0, 1, 2)))
        err = max(relerr(ref_out, fn(x, scale, bias)), relerr(ref_grad, grad(x, scale, bias)))
        fw = best(jax.jit(fn), x, scale, bias, reps=a.reps)
        gr = best(grad, x, scale, bias, reps=a.reps)
        print(f"| ({b}, {hw}, {hw}, {c}) | {name} | {err:.1e} | {fw * 1e3:.2f} | {gr * 1e3:.2f} |", flush=True)

  # --- Attention ------------------------------------------------------------------------------------------
  c, hw = 256, 16
  block = AttnBlock(num_groups=groups, norm_eps=eps)

  def attn_inputs(params):
    pr = params["params"]
    wqkv = jnp.concatenate([pr[n]["kernel"] for n in "qkv"], -1)
    bqkv = jnp.concatenate([pr[n]["bias"] for n in "qkv"], -1)
    return pr["norm"], wqkv, bqkv, pr["proj_out"]

  def attn_fused(x, norm, wqkv, bqkv, proj, use_dpa=False):
    b = x.shape[0]
    h = flax_gn.apply({"params": norm}, x).reshape(b, hw * hw, c)
    q, k, v = jnp.split(h @ wqkv + bqkv, 3, -1)
    if use_dpa:
      o = jax.nn.dot_product_attention(q[:, :, None], k[:, :, None], v[:, :, None], implementation="xla")[:, :, 0]
    else:
      wts = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", q, k) * (c ** -0.5), axis=-1)
      o = jnp.einsum("bqk,bkc->bqc", wts, v)
    return x + (o @ proj["kernel"] + proj["bias"]).reshape(x.shape)

  print("\n| attention (B, 16, 16, 256) | variant | rel. error (out, grads) | forward ms | forward + backward ms |")
  print("|---|---|---:|---:|---:|")
  for b in batches:
    x = jnp.asarray(rng.standard_normal((b, hw, hw, c)), jnp.float32)
    params = block.init(jax.random.PRNGKey(0), x)
    # The zero-initialised output projection would hide the attention from the check: give it values.
    params["params"]["proj_out"]["kernel"] = jnp.asarray(rng.standard_normal((c, c)) * 0.05, jnp.float32)
    w = jnp.asarray(rng.standard_normal(x.shape), jnp.float32)
    ref_fn = lambda x, pr: block.apply(pr, x)
    ref_out = ref_fn(x, params)
    ref_gx = jax.grad(lambda x: jnp.sum(ref_fn(x, params) * w))(x)
    inputs = attn_inputs(params)
    variants = (("AttnBlock: 3 NIN, einsum (jaxgen)", ref_fn, params),
                ("fused qkv (C, 3C), einsum", lambda x, i: attn_fused(x, *i), inputs),
                ("fused qkv, jax.nn.dot_product_attention", lambda x, i: attn_fused(x, *i, use_dpa=True), inputs))
    for name, fn, prm in variants:  # gradients for the input and every parameter, as in training
      grad = jax.jit(jax.grad(lambda x, i, fn=fn: jnp.sum(fn(x, i) * w), (0, 1)))
      err = max(relerr(ref_out, fn(x, prm)), relerr(ref_gx, grad(x, prm)[0]))
      fw = best(jax.jit(fn), x, prm, reps=a.reps)
      gr = best(grad, x, prm, reps=a.reps)
      print(f"| B={b} | {name} | {err:.1e} | {fw * 1e3:.2f} | {gr * 1e3:.2f} |", flush=True)

if __name__ == "__main__":
  main()
