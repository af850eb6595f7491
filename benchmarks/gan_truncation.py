r"""The truncation trick's trade-off for a finished GAN run: FID / precision / recall and class agreement (with
its chance level) of N samples of the EMA generator at each truncation, in the data set's feature space, as a
figure and a JSON table, plus a sample grid at a few truncations.

  python -m benchmarks.gan_truncation --workdir=workdirs/biggan_quick \
      [--truncations=0.25,0.5,0.75,1.0,1.5,2.0,none] [--num=1000] [--bn_stats=standing] \
      [--step=N] [--figure=docs/figures/biggan_truncation_curve.png] [--grid=docs/figures/biggan_truncation_grid.png]

Each truncation is a sampling option checked by the family's rules (registry.apply_sample_options: gan.truncation
>= 0, 'none' = 0 = the untruncated normal); the samples are drawn and graded by the pieces of
jaxgen.eval.sample_metrics (draw_samples with the run's held-out conditions, compare). Not evaluate_run itself:
it appends its results to the run's metrics.jsonl at the checkpoint's step, which would mix seven truncations
into the training curve. Written: WORKDIR/eval/truncation_step<N>.json (and the figures).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--workdir", required=True)
  p.add_argument("--truncations", default="0.25,0.5,0.75,1.0,1.5,2.0,none")
  p.add_argument("--num", type=int, default=1000)
  p.add_argument("--step", type=int, default=None, help="the checkpoint (default: the latest)")
  p.add_argument("--bn_stats", default=None, help="batch | running | standing (default: the run's)")
  p.add_argument("--figure", default="docs/figures/biggan_truncation_curve.png")
  p.add_argument("--grid", default="docs/figures/biggan_truncation_grid.png")
  p.add_argument("--grid_truncations", default="0.25,1.0,none")
  args = p.parse_args(argv)
  from jaxgen.train import runtime
  runtime.set_xla_cpu_flags()

  import jax
  import numpy as np
  from jaxgen import registry
  from jaxgen.eval import sample_metrics as sm
  from jaxgen.train.run import load_run

  def value(t):
    return 0.0 if t.strip().lower() == "none" else float(t)

  truncs = [value(t) for t in args.truncations.split(",")]
  run = load_run(args.workdir, step=args.step, overrides={"evals": ()})
  space = sm.load_feature_space(run.config)
  ref = sm.reference(run.config, space, log=print)
  cond, asked = sm.eval_conditions(run.config, run.family, args.num)
  rows = []
  for t in truncs:
    options = {"truncation": t}
    if args.bn_stats:
      options["bn_stats"] = args.bn_stats
    registry.apply_sample_options(run.config, options)                # the family's rules, before sampling
    with tempfile.TemporaryDirectory() as d:
      images = sm.draw_samples(run.family, run.params, args.num, d, chunk=min(args.num, 500), seed=run.config.seed,
                               options=options, cond=cond, log=None)
    m = sm.compare(space, images, ref, asked)
    rows.append({"truncation": t or None, **{k.split("/", 1)[1]: float(v) for k, v in m.items()}})
    print(json.dumps(rows[-1]))
  os.makedirs(os.path.join(args.workdir, "eval"), exist_ok=True)
  with open(os.path.join(args.workdir, "eval", f"truncation_step{run.step}.json"), "w") as f:
    json.dump({"step": run.step, "num_samples": args.num, "bn_stats": args.bn_stats or run.config.gan.get("bn_stats"),
               "rows": rows}, f, indent=2)
  _curve(rows, args.figure, f"{run.experiment}:{run.preset} step {run.step}, {args.num} samples")
  if args.grid:
    _grid(run, [value(t) for t in args.grid_truncations.split(",")], args.bn_stats, args.grid)
  del jax, np
  return rows


def _curve(rows, path, title):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  xs = [r["truncation"] if r["truncation"] else 3.0 for r in rows]          # 'none' drawn at 3
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
  axes[0].plot(xs, [r["fid"] for r in rows], "o-", color="k", label="FID")
  axes[0].set_ylabel("FID (shapes feature space)")
  ax2 = axes[1]
  for name, style in (("precision", "o-"), ("recall", "s-")):
    ax2.plot(xs, [r[name] for r in rows], style, label=name)
  if "label_accuracy" in rows[0]:
    ax2.plot(xs, [r["label_accuracy"] for r in rows], "^-", label="class agreement")
    ax2.plot(xs, [r["label_accuracy_chance"] for r in rows], ":", color="grey", label="agreement by chance")
  ax2.set_ylim(0, 1)
  ax2.legend(fontsize=7)
  for ax in axes:
    ax.set_xlabel("truncation (none at 3)")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{r['truncation']:g}" if r["truncation"] else "none" for r in rows], fontsize=7)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path, dpi=90)
  print(f"wrote {path}")


def _grid(run, truncs, bn_stats, path):
  """One grid per truncation side by side (same z seed, one class per row)."""
  import jax
  import numpy as np
  from jaxgen.train.images import image_grid
  from PIL import Image
  num = run.config.num_samples
  panels = []
  for t in truncs:
    opts = {"truncation": t, **({"bn_stats": bn_stats} if bn_stats else {})}
    x = np.asarray(jax.jit(lambda p, o=opts: run.family.sample(p, jax.random.PRNGKey(0), num, **o))(run.params))
    img = ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8)
    cols = num // max(run.family.num_classes, 1) if run.family.num_classes else None
    panels.append(image_grid(img, ncols=cols, padding=1))
  h = max(p.shape[0] for p in panels)
  sep = np.full((h, 6, panels[0].shape[-1]), 255, np.uint8)     # grey (digits) or RGB panels
  out = np.concatenate(sum(([p, sep] for p in panels), [])[:-1], axis=1)
  out = out[..., 0] if out.shape[-1] == 1 else out
  Image.fromarray(out).resize((out.shape[1] * 2, out.shape[0] * 2), Image.NEAREST).save(path)
  print(f"wrote {path} (truncations {', '.join(f'{t:g}' if t else 'none' for t in truncs)}, left to right)")


if __name__ == "__main__":
  main()
