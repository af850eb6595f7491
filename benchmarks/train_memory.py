r"""Peak memory and cost of the DDPM CIFAR-10 train step (35.7M params) from XLA's own analyses, with and
without rematerialisation of the U-Net blocks (`model.remat`), and the largest batch per device that fits.

  python benchmarks/train_memory.py [--batches 32,128] [--out docs/figures/train_memory.json]

Each program is lowered from abstract shapes and compiled (nothing is run, no data is needed); the table gives
XLA's buffer assignment (arguments = the train state and the batch, temporaries = activations and gradients;
the state is donated, so outputs alias arguments), the step's FLOPs and bytes accessed from its cost analysis,
and, fitting bytes = fixed + per_image * batch through the two batch sizes, the largest batch whose step fits
in 16/40/80 GB. Compiled for this process's backend: on the CPU it is XLA:CPU's buffer assignment, a proxy for
a GPU's (whose fusion and scheduling differ), not a measurement on one.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GB = 1e9


def analyse(batch: int, remat: bool) -> dict:
  sys.path.insert(0, ROOT)
  import jax
  from experiments.ddpm_cifar import get_config
  from jaxgen.data import example_batch
  from jaxgen.diffusion.build import make_ddpm
  from jaxgen.train import parallel, trainer
  config = get_config("paper")
  config.batch_size = batch
  config.model.remat = remat
  family = make_ddpm(config)
  mesh = parallel.make_mesh(config)
  data = example_batch(config)
  data = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=parallel.batch_sharding(mesh)), data)
  state = trainer.abstract_train_state(family, config, mesh, example_batch(config))
  t0 = time.perf_counter()
  compiled = trainer.make_train_step(family, mesh).lower(state, data).compile()
  seconds = time.perf_counter() - t0
  mem = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  peak = mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes + mem.temp_size_in_bytes
  return {"batch": batch, "remat": remat, "backend": jax.default_backend(), "compile_s": round(seconds, 1),
          "argument_bytes": mem.argument_size_in_bytes, "output_bytes": mem.output_size_in_bytes,
          "alias_bytes": mem.alias_size_in_bytes, "temp_bytes": mem.temp_size_in_bytes, "peak_bytes": peak,
          "flops": cost.get("flops"), "bytes_accessed": cost.get("bytes accessed")}


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batches", default="32,128", help="two or more batch sizes (the fit uses the smallest and largest)")
  p.add_argument("--out", default="", help="also write the rows as JSON here")
  p.add_argument("--_one", default="", help=argparse.SUPPRESS)
  a = p.parse_args()
  if a._one:                                  # worker: one program per process (frees its compile memory)
    b, r = a._one.split(",")
    print("ROW " + json.dumps(analyse(int(b), r == "1")), flush=True)
    return
  batches = sorted(int(b) for b in a.batches.split(","))
  if len(batches) < 2 or batches[0] < 1:
    raise SystemExit(f"--batches={a.batches!r}: give two or more positive batch sizes, e.g. 32,128")
  rows = []
  for remat in (False, True):
    for b in batches:
      out = subprocess.run([sys.executable, __file__, f"--_one={b},{int(remat)}"], cwd=ROOT,
                                         capture_output=True, text=True)
      line = [l for l in out.stdout.splitlines() if l.startswith("ROW ")]
      if out.returncode or not line:
        raise SystemExit(f"batch {b} remat={remat} failed:\n{out.stderr[-3000:]}")
      rows.append(json.loads(line[0][4:]))
      r = rows[-1]
      print(f"  batch {b:4d} remat={remat!s:5}: peak {r['peak_bytes'] / GB:6.2f} GB, temporaries "
            f"{r['temp_bytes'] / GB:6.2f} GB, {r['flops'] / 1e9 / b:6.1f} GFLOP/img, compiled in {r['compile_s']} s",
            file=sys.stderr, flush=True)
  print(f"\nDDPM CIFAR-10 train step (35.7M params, Adam + EMA, float32), XLA memory/cost analysis on "
        f"{rows[0]['backend']}\n")
  print("| batch | remat | state+batch GB | temporaries GB | peak GB | GFLOP / image | GB accessed / image |")
  print("|---:|---|---:|---:|---:|---:|---:|")
  for r in rows:
    print(f"| {r['batch']} | {'yes' if r['remat'] else 'no'} | {r['argument_bytes'] / GB:.2f} | "
          f"{r['temp_bytes'] / GB:.2f} | {r['peak_bytes'] / GB:.2f} | {r['flops'] / 1e9 / r['batch']:.1f} | "
          f"{r['bytes_accessed'] / GB / r['batch']:.2f} |")
  print("\n| remat | fixed GB | GB per image | largest batch in 16 GB | 40 GB | 80 GB |")
  print("|---|---:|---:|---:|---:|---:|")
  fits = {}
  for remat in (False, True):
    lo, hi = [r for r in rows if r["remat"] == remat and r["batch"] in (batches[0], batches[-1])]
    per = (hi["peak_bytes"] - lo["peak_bytes"]) / (hi["batch"] - lo["batch"])
    fixed = lo["peak_bytes"] - per * lo["batch"]
    fits[remat] = {cap: int((cap * GB - fixed) // per) for cap in (16, 40, 80)}
    print(f"| {'yes' if remat else 'no'} | {fixed / GB:.2f} | {per / GB:.3f} | "
          + " | ".join(str(fits[remat][c]) for c in (16, 40, 80)) + " |")
  if a.out:
    with open(a.out, "w") as f:
      json.dump({"rows": rows, "largest_batch": {str(k): v for k, v in fits.items()}}, f, indent=1)


if __name__ == "__main__":
  main()
