"""Figures of a finished GAN run, from what its workdir holds.

  python -m jaxgen.gan.figures progan_phases --workdir=workdirs/progan_shapes --out=docs/figures/progan_phases.png

progan_phases: the sample grid the run drew at the end of each phase of its growth (4x4, 8x8, ... full
resolution; the trainer's grids are drawn from the same latents at every step), side by side. The run's
`sample_every` must divide the phase ends (experiments/progan.py's quick preset draws a grid every phase).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Tuple


def phase_end_steps(phase_steps: int, num_levels: int, last_step: int) -> List[Tuple[str, int]]:
  """(resolution label, the step at the end of that level's stable phase) for every level; the full
  resolution's entry is the run's last step."""
  out = []
  for p in range(num_levels):
    r = 4 * 2 ** p
    end = phase_steps * (2 * p + 1) if p < num_levels - 1 else max(last_step, phase_steps * (2 * p + 1))
    out.append((f"{r}x{r}", end))
  return out


def progan_phase_figure(workdir: str, out: str) -> str:
  from PIL import Image
  from jaxgen.nn.progan import num_levels
  from jaxgen.train.images import pyplot
  config = json.load(open(os.path.join(workdir, "config.json")))["config"]
  if config.get("model", {}).get("kind") != "progan":
    raise ValueError(f"{workdir} is not a progressive GAN run (model.kind={config.get('model', {}).get('kind')!r})")
  from jaxgen.data.specs import get_dataset_spec
  n = num_levels(get_dataset_spec(config["data"]["name"]).image_shape[0])
  panels = []
  for label, step in phase_end_steps(config["gan"]["phase_steps"], n, config["num_train_steps"]):
    path = os.path.join(workdir, "samples", f"step_{step}.png")
    if not os.path.exists(path):
      raise ValueError(f"{path} is missing: the run drew no grid at the end of its {label} phase (sample_every="
                       f"{config['sample_every']} must divide the phase ends, or the run has not reached step {step})")
    panels.append((f"{label} (step {step})", Image.open(path)))
  plt = pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), dpi=100, squeeze=False)
  for ax, (title, img) in zip(axes[0], panels):
    ax.imshow(img, cmap="gray" if img.mode == "L" else None, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
  fig.tight_layout(pad=0.3)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  fig.savefig(out, bbox_inches="tight")
  plt.close(fig)
  return out


FIGURES = {"progan_phases": progan_phase_figure}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("figure", choices=sorted(FIGURES))
  p.add_argument("--workdir", required=True)
  p.add_argument("--out", required=True)
  a = p.parse_args(argv)
  try:
    print(FIGURES[a.figure](a.workdir, a.out))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
