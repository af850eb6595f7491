r"""Where a diffusion sampler's time goes, and what fewer steps cost in quality.

  python benchmarks/diffusion_sampler.py --workdir=workdirs/ddpm_quick [--num=1000] [--batch=500]
      [--configs=ancestral:0,ddim:50,ddim:25:quadratic,ddim:50:even:1] [--out=docs/figures/ddpm_sampler_speed.md]

For the run in --workdir (EMA params of its latest checkpoint, jaxgen.train.run.load_run):
  1. the network alone: one compiled U-Net forward pass on a batch of --batch, timed over repeats (the cost of a
     step if the loop added nothing);
  2. each sampler configuration `sampler:steps[:spacing[:eta]]` (0 = all T) as jaxgen runs it, one compiled loop: compile time,
     then the wall time of drawing --num samples in batches of --batch, per step, and the loop's overhead per
     step (wall per step minus the network pass; guided samplers run the network on a batch of 2B);
  3. the samples' metrics in the data set's feature space (jaxgen.eval.sample_metrics.compare: FID, precision,
     recall, ... against the training split), the same noise seeds for every configuration;
  4. DDIM inversion (--inversion_steps): the held-out images encoded to x_T and decoded back with the same
     number of DDIM steps; the reconstruction's RMSE in 8-bit levels, and the std of x_T (1 for a Gaussian).
Prints a markdown table (and writes it to --out). Timings are wall-clock on whatever machine runs it: compare
rows of one run, not numbers across machines.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--workdir", required=True)
  p.add_argument("--num", type=int, default=1000)
  p.add_argument("--batch", type=int, default=500)
  p.add_argument("--configs", default="ancestral:0,ddim:50,ddim:25,ddim:10")
  p.add_argument("--guidance", type=float, default=None, help="conditional runs: guidance scale for every row")
  p.add_argument("--repeats", type=int, default=20)
  p.add_argument("--seed", type=int, default=None,
                 help="noise seed of every row (default: the run's config.seed); rerun with others for the spread")
  p.add_argument("--no_clip", action="store_true", help="sample without clipping the predicted x0 to [-1, 1]")
  p.add_argument("--out", default=None)
  p.add_argument("--inversion_steps", default="50,20,10", help="comma-separated DDIM steps ('' to skip)")
  a = p.parse_args()
  configs = []
  for item in filter(None, a.configs.split(",")):
    name, steps, spacing, eta = (item.split(":") + ["", "", "", ""])[:4]
    if name not in ("ancestral", "ddim") or not steps.isdigit() or spacing not in ("", "even", "quadratic"):
      p.error(f"--configs item {item!r}: use ancestral:<steps>[:<spacing>] or ddim:<steps>[:<spacing>[:<eta>]] "
              "(steps 0 = all T; spacing even or quadratic)")
    configs.append((name, int(steps), spacing or "even", float(eta or 0.0)))
  sys.path.insert(0, ROOT)
  from jaxgen.train import runtime
  runtime.set_xla_cpu_flags()
  runtime.quiet_startup(False)
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jaxgen.eval import sample_metrics as sm
  from jaxgen.train.run import load_run

  run = load_run(a.workdir, overrides={"evals": (), **({"diffusion.clip_x0": False} if a.no_clip else {})})
  ddpm, params = run.family, run.params
  if run.config.family != "ddpm":
    p.error(f"--workdir={a.workdir} is a {run.config.family!r} run, not a diffusion run")
  space = sm.load_feature_space(run.config)
  ref = sm.reference(run.config, space, log=lambda m: None)
  T = ddpm.schedule.num_timesteps
  seed = run.config.seed if a.seed is None else a.seed
  k = ddpm.num_classes
  guidance = ddpm.guidance if a.guidance is None else a.guidance
  labels = jnp.asarray(np.arange(a.batch) % k, jnp.int32) if k else None
  net_batch = a.batch * (2 if k and guidance else 1)

  # 1. The network alone.
  x = jax.random.normal(jax.random.PRNGKey(0), (net_batch,) + ddpm.event_shape)
  t = jnp.full((net_batch,), T // 2, jnp.int32)
  lab = None if not k else jnp.concatenate([labels, labels])[:net_batch]
  net = jax.jit(lambda p_, x_: ddpm.network_fn(p_, None if lab is None else {"label": lab})(x_, t))
  jax.block_until_ready(net(params, x))
  t0 = time.perf_counter()
  for _ in range(a.repeats):
    out = net(params, x)
  jax.block_until_ready(out)
  net_ms = (time.perf_counter() - t0) / a.repeats * 1e3

  rows = []
  for name, steps, spacing, eta in configs:
    n_steps = steps or T
    opts = dict(sampler=name, steps=steps, spacing=spacing, **(dict(eta=eta) if name == "ddim" else {}))
    if k:
      opts["guidance"] = guidance
    fn = jax.jit(lambda p_, r: ddpm.sample(p_, r, a.batch, {"label": labels}, **opts) if k else ddpm.sample(p_, r, a.batch, **opts))
    key = jax.random.PRNGKey(seed)
    t0 = time.perf_counter()
    compiled = fn.lower(params, key).compile()
    compile_s = time.perf_counter() - t0
    chunks, t0 = [], time.perf_counter()
    for i in range(-(-a.num // a.batch)):
      chunks.append(np.asarray(compiled(params, jax.random.fold_in(key, i))))
    wall = time.perf_counter() - t0
    from jaxgen.data.image import signed_unit_to_uint8
    images = np.asarray(signed_unit_to_uint8(np.concatenate(chunks)[:a.num]))
    asked = None if not k else {"label": np.tile(np.asarray(labels), len(chunks))[:a.num]}
    m = sm.compare(space, images, ref, asked)
    per_step_ms = wall / len(chunks) / n_steps * 1e3
    rows.append(dict(sampler=name + ("" if spacing == "even" else f" {spacing}") + (f" eta {eta:g}" if eta else ""),
                     steps=n_steps, compile_s=compile_s, wall_s=wall, per_step_ms=per_step_ms,
                     overhead_ms=per_step_ms - net_ms, fid=m["samples/fid"], precision=m["samples/precision"],
                     recall=m["samples/recall"], label_accuracy=m.get("samples/label_accuracy")))
    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

  inversion = []
  if a.inversion_steps:
    from jaxgen.data import load_split
    from jaxgen.data.image import uint8_to_signed_unit
    from jaxgen.data.specs import get_dataset_spec
    test = load_split(run.config, get_dataset_spec(run.config.data.name).eval_split)
    x0 = uint8_to_signed_unit(test["image"])
    lab = jnp.asarray(test["label"], jnp.int32) if k else None
    for s in (int(v) for v in a.inversion_steps.split(",")):
      t0 = time.perf_counter()
      x_T = jax.jit(lambda p_, x_: ddpm.encode(p_, x_, lab, steps=s))(params, x0)
      back = jax.jit(lambda p_, z: ddpm.decode(p_, z, lab, steps=s))(params, x_T)
      rmse = float(jnp.sqrt(jnp.mean(jnp.square(back - x0)))) * 127.5
      inversion.append(dict(steps=s, rmse_levels=rmse, x_T_std=float(jnp.std(x_T)), seconds=time.perf_counter() - t0,
                            num=int(x0.shape[0])))
      print(json.dumps(inversion[-1]), file=sys.stderr, flush=True)

  base = rows[0]["wall_s"] if rows else 1.0
  lines = [f"Run {os.path.abspath(a.workdir)} (step {run.step}, T={T}{', guidance %g' % guidance if k else ''}"
           f"{', x0 not clipped' if a.no_clip else ''}); "
           f"{a.num} samples in batches of {a.batch}, seed {seed}; network pass on {net_batch}: {net_ms:.2f} ms; "
           f"{jax.devices()[0].platform} x{jax.device_count()}",
           "",
           "| sampler | steps | compile s | wall s | vs first row | ms/step | loop overhead ms/step | FID | precision | recall |"
           + (" label acc |" if k else ""),
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if k else "")]
  for r in rows:
    lines.append(f"| {r['sampler']} | {r['steps']} | {r['compile_s']:.1f} | {r['wall_s']:.1f} | "
                 f"{r['wall_s'] / base:.3f} | {r['per_step_ms']:.2f} | {r['overhead_ms']:.2f} | {r['fid']:.2f} | "
                 f"{r['precision']:.3f} | {r['recall']:.3f} |" + (f" {r['label_accuracy']:.3f} |" if k else ""))
  if inversion:
    lines += ["", f"DDIM inversion of the {inversion[0]['num']} held-out images (encode, then decode, same steps):", "",
              "| DDIM steps | reconstruction RMSE (8-bit levels) | std of x_T | seconds |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['steps']} | {r['rmse_levels']:.2f} | {r['x_T_std']:.3f} | {r['seconds']:.1f} |" for r in inversion]
  table = "\n".join(lines)
  print(table)
  if a.out:
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
      f.write(table + "\n")


if __name__ == "__main__":
  main()
