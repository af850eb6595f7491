r"""Train-step time per image of GAN presets, measured in one process (the figures docs/gans.md reads its
"equal wall time" comparisons from: a contended run's wall clock is not a fair measure, one quiet step is).

  python benchmarks/gan_step_time.py dcgan_cifar:quick_shapes dcgan_cifar:quick_shapes_cond biggan:quick \
      [--set text2image_gan:condition.workdir=workdirs/clip_quick] [--steps 20]

Each argument is `<experiment module>:<preset>`; `--set <module>:<field>=<value>` overrides a config field of
that experiment (a frozen part's workdir, say). Each row is the shared trainer's whole compiled train step
(both players, the EMA) on the first training batch of the family's own data function, at the preset's batch
size: XLA's GFLOP per step, the median step time, images per second, milliseconds per image, compile time.
A progressive GAN gets a row per growth level (its state set to the start of that level's stable phase, the step
compiled for that phase as the trainer compiles it) and the mean step time over its preset's steps.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _set(config, dotted, text):
  *parents, leaf = dotted.split(".")
  node = config
  for p in parents:
    node = node[p]
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  node[leaf] = value


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("runs", nargs="+", help="<experiment module>:<preset>, e.g. dcgan_cifar:quick_shapes")
  p.add_argument("--set", action="append", default=[], help="<module>:<field>=<value>")
  p.add_argument("--steps", type=int, default=20)
  a = p.parse_args()
  sys.path.insert(0, ROOT)
  from benchmarks.common import step_row
  from jaxgen.train import runtime
  runtime.set_xla_cpu_flags()
  from jaxgen import registry
  overrides = {}
  for s in a.set:
    module, _, rest = s.partition(":")
    field, eq, value = rest.partition("=")
    if not (module and field and eq):
      p.error(f"--set {s!r}: expected <module>:<field>=<value>")
    overrides.setdefault(module, []).append((field, value))
  configs = []
  for run in a.runs:
    module, _, preset = run.partition(":")
    if not preset:
      p.error(f"{run!r}: expected <experiment module>:<preset>")
    config = importlib.import_module(f"experiments.{module}").get_config(preset)
    for field, value in overrides.get(module, []):
      _set(config, field, value)
    registry.validate_config(config)            # every row's config is checked before anything compiles
    configs.append((run, config))
  print("| preset | batch | GFLOP / step | step (s) | images / s | ms / image | compile (s) |")
  print("|---|---|---|---|---|---|---|")
  for run, config in configs:
    entry = registry.family_entry(config.family)
    family = registry.resolve(entry.build)(config)
    batch = next(iter(registry.resolve(entry.data_fn)(config)(0)))
    batch = {k: v for k, v in batch.items() if k != "caption"}
    b = config.batch_size
    growth = getattr(family, "growth", None)
    if growth is None:
      _print_row(run, b, step_row(family, config, batch, a.steps)[0])
      continue
    # a progressive GAN: one row per level (its step at the start of that level's stable phase), then the mean
    # over the run's steps (the fade into a level costs about what the level does)
    total, weighted = config.num_train_steps, 0.0
    for p in range(growth.num_levels):
      start = 2 * p * growth.phase_steps
      row = step_row(family, config, batch, a.steps, start_step=start)[0]
      r = 4 * 2 ** p
      _print_row(f"{run} at {r}x{r} (step {start})", b, row)
      first = 0 if p == 0 else (2 * p - 1) * growth.phase_steps
      last = total if p == growth.num_levels - 1 else (2 * p + 1) * growth.phase_steps
      weighted += row["step_s"] * max(0, min(last, total) - min(first, total))
    mean = weighted / total
    print(f"| {run}, mean over its {total} steps | {b} | | {mean:.4f} | {b / mean:.0f} | {1e3 * mean / b:.2f} | |",
          flush=True)


def _print_row(name, b, row):
  print(f"| {name} | {b} | {row['gflop']:.2f} | {row['step_s']:.4f} | {b / row['step_s']:.0f} | "
        f"{1e3 * row['step_s'] / b:.2f} | {row['compile_s']:.1f} |", flush=True)


if __name__ == "__main__":
  main()
