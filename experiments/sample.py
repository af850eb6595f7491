r"""Draw samples from a finished run: uint8 images (or float points) in an .npz and a PNG grid (or scatter plot).

  python -m experiments.sample --workdir=DIR --num=N [--sampler=ddim --steps=50 --eta=0] [--guidance=3 --label=7]
      [--caption="a small red circle above a large blue square" | --captions=FILE]
      [--spacing=even|quadratic] [--variance=fixed_large|fixed_small] [--out=FILE.npz] [--batch=500] [--seed=0]
      [--step=S] [--config.<field>=<value> ...]

The run is rebuilt with jaxgen.train.run.load_run from DIR's config.json and its latest checkpoint (or --step),
and sampled with the EMA parameters, sharded over all devices, --batch samples at a time; each batch is saved as
it is drawn under FILE.npz.parts/ (a killed command resumes where it stopped) and FILE.npz holds `images` (N, H,
W, C) uint8 (a 2-D points run: `points` (N, 2) float32 and a scatter plot), the conditions asked for
(`labels`, `tokens`) and the settings. --out defaults to DIR/samples/sample_<step>_<tag>.npz.
Conditions: --label (a class-conditional run), --caption or --captions=FILE (one caption a line; a run
conditioned on captions, tokenised with its data set's tokenizer); without them a conditional run samples the
conditions of its grid (one class per row) or, where it has none, those of the held-out split. A condition the
run does not take is refused in one line.
Any field of the run's config can be overridden as with the experiments (--config.diffusion.clip_x0=False).

Diffusion runs (the DDPM family, and runs converted by jaxgen.diffusion.convert_diffusers): --sampler ancestral
or ddim, --steps (0 = all T), --eta (DDIM), --guidance (classifier-free guidance scale w of a class-conditional
run), --label (every sample of that class; default: the classes in equal runs, one per grid row). Other
families take no sampler flags; a flow's temperature is --config.eval.sample_options.temperature=0.7.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
from absl import app, flags

from jaxgen.diffusion.options import define_sampling_flags, sampling_options

flags.DEFINE_string("workdir", None, "run directory of a finished run")
flags.DEFINE_integer("num", 64, "number of samples")
flags.DEFINE_integer("batch", 500, "samples per batch (rounded to a multiple of the device count)")
flags.DEFINE_integer("seed", 0, "sampling seed")
flags.DEFINE_integer("step", None, "checkpoint step (default: the latest)")
flags.DEFINE_string("out", None, "output .npz (default DIR/samples/sample_<step>_<settings>.npz)")
flags.DEFINE_integer("label", None, "conditional runs: draw only this class")
flags.DEFINE_string("caption", None, "caption-conditioned runs: draw every sample for this caption")
flags.DEFINE_string("captions", None, "caption-conditioned runs: a file of captions, one a line (cycled)")
define_sampling_flags()
FLAGS = flags.FLAGS


def _fail(message: str):
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


def _workdir_from_argv(argv):
  for i, a in enumerate(argv):
    if a.startswith("--workdir="):
      return a.split("=", 1)[1]
    if a == "--workdir" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _define_config_flag(argv):
  """--config.<field>=<value> overrides of the run's own config, parsed by ml_collections as the experiments'
  are (types checked against the run's values)."""
  from ml_collections import config_flags
  from jaxgen.train.run import read_run_config
  workdir = _workdir_from_argv(argv)
  if not workdir:
    if any(a in ("--help", "-h", "--helpfull", "-?", "--helpshort") for a in argv[1:]):
      return {}, {}                  # absl prints the help (the run's --config.<field> flags need --workdir)
    _fail("--workdir is required (the run to sample from)")
  try:
    record, config = read_run_config(workdir)
  except (FileNotFoundError, ValueError) as e:
    _fail(str(e))
  config_flags.DEFINE_config_dict("config", config, "the run's config; override fields with --config.<f>=<v>")
  return record, config.to_dict()


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _check(record, family_name):
  if FLAGS.num < 1 or FLAGS.batch < 1:
    _fail(f"--num={FLAGS.num} and --batch={FLAGS.batch} must be >= 1")
  if FLAGS.out and not FLAGS.out.endswith(".npz"):
    _fail(f"--out={FLAGS.out} must end in .npz (a PNG grid is written beside it)")
  given = [f for f in ("label", "caption", "captions") if FLAGS[f].value is not None]
  if len(given) > 1:
    _fail(f"--{given[0]} and --{given[1]} both ask for the condition; give one")
  if FLAGS.captions is not None and not os.path.isfile(FLAGS.captions):
    _fail(f"--captions={FLAGS.captions} is not a file (one caption a line)")


def _captions():
  if FLAGS.caption is not None:
    return [FLAGS.caption]
  if FLAGS.captions is not None:
    with open(FLAGS.captions) as f:
      lines = [line.strip() for line in f if line.strip()]
    if not lines:
      _fail(f"--captions={FLAGS.captions} holds no caption")
    return lines
  return None


def _conditions(run, num):
  """(cond numpy dict or None, what to save): the asked label or captions, else the run's grid conditions, else
  the held-out split's."""
  from jaxgen.eval.sample_metrics import eval_conditions
  captions = _captions()
  if FLAGS.label is not None or captions:
    cond, _ = eval_conditions(run.config, run.family, num, label=FLAGS.label, captions=captions)
    return cond
  if not getattr(run.family, "cond_features", ()):
    return None
  default = getattr(run.family, "default_cond", None)
  grid = default(num) if default is not None else None
  if grid is not None:
    return {k: np.asarray(v) for k, v in grid.items()}
  return eval_conditions(run.config, run.family, num)[0]


def main(argv):
  del argv
  record, original = STATE["record"], STATE["original"]
  config = FLAGS.config
  _check(record, config.get("family"))
  options = sampling_options(FLAGS)
  from jaxgen.train import runtime
  verbose = FLAGS["verbosity"].present
  runtime.set_xla_cpu_flags()
  runtime.quiet_startup(verbose)
  from absl import logging as absl_logging
  if not verbose:
    absl_logging.set_verbosity(absl_logging.WARNING)         # Orbax's INFO lines on every restore
  from jaxgen.eval.sample_metrics import draw_samples
  from jaxgen.train.images import save_image_grid, save_scatter
  from jaxgen.train.run import load_run
  changed = {k: v for k, v in _flatten(config.to_dict()).items() if _flatten(original).get(k) != v}
  try:
    from jaxgen import registry
    registry.apply_sample_options(FLAGS.config, options)    # the family's own options, before any compile
    run = load_run(FLAGS.workdir, step=FLAGS.step, overrides=changed)
    tag = "_".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in sorted(options.items()))
    tag += f"_label{FLAGS.label}" if FLAGS.label is not None else ""
    captions = _captions()
    if captions:
      import hashlib
      tag += "_caption" + hashlib.sha256("\n".join(captions).encode()).hexdigest()[:8]
    cond = _conditions(run, FLAGS.num)
    out = FLAGS.out or os.path.join(FLAGS.workdir, "samples", f"sample_{run.step}_n{FLAGS.num}_seed{FLAGS.seed}"
                                    f"{'_' + tag if tag else ''}.npz")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    log = lambda m: print(m, file=sys.stderr, flush=True)    # noqa: E731
    images = draw_samples(run.family, run.params, FLAGS.num, out + ".parts", chunk=min(FLAGS.batch, FLAGS.num),
                          seed=FLAGS.seed, options=options, cond=cond, log=log)
  except (FileNotFoundError, ValueError) as e:
    _fail(str(e))
  timing = draw_samples.last_timing
  meta = {"workdir": os.path.abspath(FLAGS.workdir), "step": run.step, "num": FLAGS.num, "seed": FLAGS.seed,
          "options": options, "label": FLAGS.label, "captions": captions, "overrides": changed,
          "experiment": record.get("experiment"), "seconds": round(timing["seconds"], 3),
          "fresh_batches": timing["fresh_chunks"]}
  labels = None if cond is None or "label" not in cond else np.asarray(cond["label"])
  tmp = out + ".tmp.npz"
  points = images.ndim == 2
  arrays = {"points" if points else "images": images}
  arrays.update({"labels" if k == "label" else k: np.asarray(v) for k, v in (cond or {}).items()})
  np.savez(tmp, **arrays, meta=json.dumps(meta))
  os.replace(tmp, out)
  import shutil
  shutil.rmtree(out + ".parts", ignore_errors=True)
  if points:
    grid = save_scatter(out[:-4] + ".png", images, title=f"{FLAGS.num} samples, step {run.step}")
  else:
    shown, ncols = _grid(images, labels, getattr(run.family, "num_classes", 0))
    grid = save_image_grid(out[:-4] + ".png", shown, ncols=ncols)
  print(json.dumps({"out": out, "grid": grid, **meta}, indent=2))


def _grid(images, labels, num_classes, limit=100):
  """Up to `limit` images for the PNG; a conditional run's drawn classes one per row, in order."""
  if not num_classes or labels is None or FLAGS.label is not None or len(images) < num_classes:
    return images[:limit], None
  per = max(1, limit // num_classes)
  rows = [np.flatnonzero(labels == c)[:per] for c in range(num_classes)]
  cols = min(len(r) for r in rows)
  if cols == 0:                                    # too few samples for a row of every class
    return images[:limit], None
  return images[np.concatenate([r[:cols] for r in rows])], cols


STATE = {}

if __name__ == "__main__":
  STATE["record"], STATE["original"] = _define_config_flag(sys.argv)
  app.run(main)
