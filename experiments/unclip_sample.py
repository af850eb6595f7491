r"""Captions to images with unCLIP (a decoder run and, optionally, a prior run of experiments/unclip_shapes.py),
and variations of an image.

  python -m experiments.unclip_sample --workdir=DECODER_DIR [--prior=PRIOR_DIR] \
      --caption="a small red circle above a large blue square" [--captions=FILE] --num=16 \
      [--rerank=8] [--guidance_prior=1] [--guidance_decoder=1] [--no_prior] [--seed=0] [--out=FILE.npz]
  python -m experiments.unclip_sample --workdir=DECODER_DIR --variations=IMAGE.png --num=8

Captions: each caption's CLIP text embedding goes through the prior (its sampled CLIP image embedding) or, without
--prior (or with --no_prior), straight to the decoder; the decoder draws --num * --rerank candidates per caption
and the --num of highest CLIP score are kept (--rerank=1: no reranking). Variations: the image (a PNG, any size
the decoder's data has; RGBA / grey are converted) is embedded by the decoder's CLIP and decoded --num times.
Writes FILE.npz (`images` uint8 (C, num, H, W, 3), `scores` their CLIP logits, `captions`, the settings) and
FILE.png, a grid with one row per caption (its text above, each image's CLIP score under it) or the source image
first in the row. --out defaults to DECODER_DIR/samples/unclip_<settings>.npz. Guidance scales default to each
run's own (diffusion.guidance).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np
from absl import app, flags

flags.DEFINE_string("workdir", None, "the decoder's run directory (experiments/unclip_shapes.py:*_decoder)")
flags.DEFINE_string("prior", None, "the prior's run directory (experiments/unclip_shapes.py:*_prior)")
flags.DEFINE_string("caption", None, "draw images for this caption")
flags.DEFINE_string("captions", None, "a file of captions, one a line")
flags.DEFINE_string("variations", None, "a PNG image: draw variations of it")
flags.DEFINE_integer("num", 16, "images per caption (or variations of the image)")
flags.DEFINE_integer("rerank", 1, "candidates per kept image, the best by CLIP score kept (1: no reranking)")
flags.DEFINE_float("guidance_prior", None, "the prior's guidance scale (default: the prior run's)")
flags.DEFINE_float("guidance_decoder", None, "the decoder's guidance scale (default: the decoder run's)")
flags.DEFINE_bool("no_prior", False, "feed the caption's CLIP text embedding straight to the decoder")
flags.DEFINE_integer("seed", 0, "sampling seed")
flags.DEFINE_integer("batch", 250, "samples per compiled chunk")
flags.DEFINE_string("out", None, "output .npz (default DECODER_DIR/samples/unclip_<settings>.npz)")
FLAGS = flags.FLAGS


def _fail(message: str):
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


def _captions():
  if FLAGS.caption is not None:
    return [FLAGS.caption]
  with open(FLAGS.captions) as f:
    caps = [line.strip() for line in f if line.strip()]
  if not caps:
    _fail(f"--captions={FLAGS.captions} holds no caption")
  return caps


def check_flags():
  """Every flag checked before anything is loaded or compiled (one line, exit code 2)."""
  if not FLAGS.workdir:
    _fail("--workdir (the decoder's run directory) is required")
  if not os.path.isfile(os.path.join(FLAGS.workdir, "config.json")):
    _fail(f"--workdir={FLAGS.workdir} holds no finished run (no config.json)")
  if FLAGS.prior and not os.path.isfile(os.path.join(FLAGS.prior, "config.json")):
    _fail(f"--prior={FLAGS.prior} holds no finished run (no config.json)")
  given = [f for f in ("caption", "captions", "variations") if FLAGS[f].value is not None]
  if len(given) != 1:
    _fail(f"give exactly one of --caption, --captions, --variations (given: {', '.join(given) or 'none'})")
  for name in ("captions", "variations"):
    if FLAGS[name].value is not None and not os.path.isfile(FLAGS[name].value):
      _fail(f"--{name}={FLAGS[name].value} is not a file")
  for name in ("num", "rerank", "batch"):
    if FLAGS[name].value < 1:
      _fail(f"--{name}={FLAGS[name].value} must be >= 1")
  if FLAGS.variations is not None and (FLAGS.rerank != 1 or FLAGS.prior or FLAGS.guidance_prior is not None):
    _fail("--variations draws from the image's own CLIP embedding: --rerank, --prior and --guidance_prior do not "
          "apply")
  if FLAGS.guidance_prior is not None and not FLAGS.prior:
    _fail(f"--guidance_prior={FLAGS.guidance_prior} needs --prior")
  for name in ("guidance_prior", "guidance_decoder"):
    v = FLAGS[name].value
    if v is not None and not v >= 0:
      _fail(f"--{name}={v} must be >= 0")


def _read_image(path, shape):
  from PIL import Image
  img = Image.open(path).convert("RGB" if shape[-1] == 3 else "L")
  if img.size != (shape[1], shape[0]):
    _fail(f"--variations={path} is {img.size[0]}x{img.size[1]}; the decoder draws {shape[1]}x{shape[0]} images")
  a = np.asarray(img, np.uint8)
  return a[..., None] if a.ndim == 2 else a


def main(argv):
  del argv
  check_flags()
  from jaxgen.train import runtime
  runtime.set_xla_cpu_flags()
  runtime.quiet_startup(FLAGS["verbosity"].present)
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.WARNING)
  from jaxgen.train.images import save_captioned_grid
  from jaxgen.unclip.pipeline import load_unclip
  log = lambda m: print(m, file=sys.stderr, flush=True)    # noqa: E731
  try:
    log(f"restoring the decoder {FLAGS.workdir}" + (f" and the prior {FLAGS.prior}" if FLAGS.prior else ""))
    pipe = load_unclip(FLAGS.workdir, None if FLAGS.no_prior else FLAGS.prior, chunk=FLAGS.batch)
    settings = {"num": FLAGS.num, "seed": FLAGS.seed, "guidance_decoder": FLAGS.guidance_decoder}
    if FLAGS.variations is not None:
      source = _read_image(FLAGS.variations, pipe.image_shape)
      log(f"drawing {FLAGS.num} variations of {FLAGS.variations}")
      images = pipe.variations(source[None], FLAGS.num, seed=FLAGS.seed, guidance=FLAGS.guidance_decoder)
      emb = pipe.image_embeddings(images[0])
      scores = (emb @ pipe.image_embeddings(source[None])[0])[None]      # cosine to the source's embedding
      captions = [f"variations of {os.path.basename(FLAGS.variations)}"]
      tag = "variations_" + hashlib.sha256(source.tobytes()).hexdigest()[:8]
    else:
      captions = _captions()
      pipe.tokens(captions)                     # an unknown word is refused here, before any sampling
      settings.update(rerank=FLAGS.rerank, guidance_prior=FLAGS.guidance_prior, use_prior=pipe.prior is not None)
      log(f"drawing {FLAGS.num} x {FLAGS.rerank} candidates for {len(captions)} caption(s) "
          f"({'prior' if pipe.prior is not None else 'no prior: text embeddings to the decoder'})")
      out = pipe.generate(captions, FLAGS.num, rerank=FLAGS.rerank, seed=FLAGS.seed,
                          guidance_prior=FLAGS.guidance_prior, guidance_decoder=FLAGS.guidance_decoder)
      images, scores, source = out.images, out.scores, None
      tag = "caption" + hashlib.sha256("\n".join(captions).encode()).hexdigest()[:8] + f"_rerank{FLAGS.rerank}"
  except (FileNotFoundError, ValueError) as e:
    _fail(str(e))
  path = FLAGS.out or os.path.join(FLAGS.workdir, "samples", f"unclip_{tag}_n{FLAGS.num}_seed{FLAGS.seed}.npz")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  meta = {"decoder": os.path.abspath(FLAGS.workdir), "prior": os.path.abspath(FLAGS.prior) if pipe.prior else None,
          "decoder_step": pipe.decoder.step, "prior_step": pipe.prior.step if pipe.prior else None,
          "captions": captions, "variations": FLAGS.variations, **settings}
  tmp = path + ".tmp.npz"
  np.savez(tmp, images=images, scores=scores, captions=np.asarray(captions), meta=json.dumps(meta),
           **({"source": source} if source is not None else {}))
  os.replace(tmp, path)
  grid = save_captioned_grid(path[:-4] + ".png", images[:, :16], captions,
                             scores[:, :16], sources=None if source is None else source[None])
  print(json.dumps({"out": path, "grid": grid, **meta}, indent=2))


if __name__ == "__main__":
  app.run(main)
