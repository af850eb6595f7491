"""unCLIP's measurements on held-out captions: what the prior, reranking and guidance each add, and variations.

  python -m jaxgen.unclip.evaluate --decoder=DIR --prior=DIR [--captions=100] [--rerank=1,4,16]
      [--guidance=0,3] [--variations=100] [--num_variations=4] [--out=DIR/eval/unclip]

For the first `captions` held-out scenes of the decoder's data set, each setting (with the prior / without it, the
caption's CLIP text embedding fed straight to the decoder; at each decoder guidance scale) draws max(rerank)
candidates per caption once; reranking with k keeps the best of the first k by CLIP score, so k = 1, 4, 16 are
nested draws of the same samples. For each (setting, k), on the kept images:
  attr_*            the shapes attribute network against what the caption asks (jaxgen.eval.agreement: kind,
                    kind + colour, kind + colour + size of each asked object in some quadrant, its colour alone,
                    the object count, each quadrant's kind / colour / size), each with `_chance` (the same images
                    against other captions: what ignoring the caption would score)
  clip_score        the mean CLIP logit s * cos(image, caption) of the kept images (and clip_cosine)
  fid, precision, recall, kid   in the shapes feature space against the training split (N = captions: FID is
                    biased upwards at small N; compare rows at the same N only)
Variations: `variations` held-out images, `num_variations` decoder samples of each one's CLIP image embedding;
the attribute network on the variations against the source's attributes (attr_*), and its chance against other
images' attributes (random pairs).
Writes out/metrics.json, out/table.md and grids (caption rows: out/captions_<setting>.png; variations:
out/variations.png).
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np


def _space_and_reference(config, log):
  from jaxgen.eval.sample_metrics import load_feature_space, reference
  space = load_feature_space(config)
  return space, reference(config, space, "train", log=log)


def grade(space, ref, images, attributes, *, clip_logits=None, clip_cos=None, log=None) -> Dict[str, float]:
  """The metrics of one set of images (uint8 (N, H, W, C)) asked for held-out `attributes` (N, A)."""
  from jaxgen.eval.sample_metrics import compare
  out = compare(space, images, ref, {"attributes": np.asarray(attributes)}, prefix="", log=log)
  if clip_logits is not None:
    out["clip_score"] = float(np.mean(clip_logits))
    out["clip_cosine"] = float(np.mean(clip_cos))
  return out


def evaluate_unclip(pipe, *, captions: int = 100, rerank: Sequence[int] = (1, 4, 16),
                    guidance: Sequence[float] = (0.0, 3.0), priors: Sequence[bool] = (True, False),
                    variations: int = 100, num_variations: int = 4, seed: int = 0, out: Optional[str] = None,
                    log=None) -> Dict:
  from jaxgen.data.specs import heldout_examples
  from jaxgen.train.images import save_captioned_grid
  from jaxgen.data.builders.shapes import detokenize
  log = log or (lambda m: print(m, file=sys.stderr, flush=True))
  data = pipe.decoder.config.data.name
  held = heldout_examples(data, max(captions, variations), ("image", "tokens", "attributes"))
  space, ref = _space_and_reference(pipe.decoder.config, log)
  texts = [detokenize(t) for t in held["tokens"][:captions]]
  k_max = max(rerank)
  results = {"captions": captions, "rerank": list(rerank), "guidance": list(guidance), "rows": []}
  scale = float(pipe.clip.family.logit_scale(pipe.clip.state.params))
  for use_prior in priors:
    if use_prior and pipe.prior is None:
      continue
    for g in guidance:
      name = f"{'prior' if use_prior else 'no_prior'}_g{g:g}"
      t0 = time.time()
      log(f"[{name}] drawing {captions} x {k_max} candidates")
      gen = pipe.generate(held["tokens"][:captions], 1, rerank=k_max, seed=seed, use_prior=use_prior,
                          guidance_decoder=g, keep_candidates=True)
      seconds = time.time() - t0
      cands, scores = gen.candidates, gen.candidate_scores          # (C, K, ...), (C, K)
      for k in rerank:
        best = np.argmax(scores[:, :k], axis=1)
        rows = np.arange(captions)
        images = cands[rows, best]
        logits = scores[rows, best]
        row = {"setting": name, "prior": use_prior, "guidance_decoder": g, "rerank": k,
               **grade(space, ref, images, held["attributes"][:captions], clip_logits=logits,
                       clip_cos=logits / scale)}
        results["rows"].append(row)
        log(f"[{name}] rerank {k}: kind {row['attr_kind']:.3f} (chance {row['attr_kind_chance']:.3f}), kind+colour "
            f"{row['attr_colour']:.3f} ({row['attr_colour_chance']:.3f}), colour {row['attr_colour_alone']:.3f} "
            f"({row['attr_colour_alone_chance']:.3f}), count {row['attr_count']:.3f}, CLIP {row['clip_score']:.2f}, "
            f"FID {row['fid']:.0f}")
      results.setdefault("seconds", {})[name] = round(seconds, 1)
      if out:
        best = np.argsort(-scores[:8], axis=1, kind="stable")[:, :8]
        save_captioned_grid(os.path.join(out, f"captions_{name}.png"),
                            cands[np.arange(8)[:, None], best] if k_max >= 8 else cands[:8],
                            texts[:8], scores[np.arange(8)[:, None], best] if k_max >= 8 else scores[:8])
  if variations:
    log(f"[variations] {variations} images x {num_variations}")
    src = held["image"][:variations]
    var = pipe.variations(src, num_variations, seed=seed)
    flat = var.reshape((-1,) + var.shape[2:])
    att = np.repeat(held["attributes"][:variations], num_variations, axis=0)
    v = grade(space, ref, flat, att)
    # the attribute network on the sources themselves: its ceiling for the variations' agreement
    real = grade(space, ref, src, held["attributes"][:variations])
    results["variations"] = {"num_images": variations, "per_image": num_variations, **v,
                             "sources": {k: real[k] for k in real if k.startswith("attr_")}}
    log(f"[variations] kind {v['attr_kind']:.3f} (random pairs {v['attr_kind_chance']:.3f}), kind+colour "
        f"{v['attr_colour']:.3f} ({v['attr_colour_chance']:.3f}), count {v['attr_count']:.3f} "
        f"({v['attr_count_chance']:.3f})")
    if out:
      save_captioned_grid(os.path.join(out, "variations.png"), var[:8], [f"variations of held-out image {i}"
                                                                          for i in range(min(8, variations))],
                          sources=src[:8])
  if out:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "metrics.json"), "w") as f:
      json.dump(results, f, indent=1)
    with open(os.path.join(out, "table.md"), "w") as f:
      f.write(markdown_table(results))
  return results


COLUMNS = (("attr_kind", "kind"), ("attr_colour_alone", "colour"), ("attr_colour", "kind + colour"),
           ("attr_size", "+ size"), ("attr_count", "count"))


def markdown_table(results) -> str:
  head = "| setting | rerank k | " + " | ".join(f"{label} (chance)" for _, label in COLUMNS) + \
         " | kind + colour / chance | per quadrant: kind / colour / size (chance) | CLIP score | FID | precision | recall |"
  lines = [head, "|" + "---|" * (head.count("|") - 1)]
  for r in results["rows"]:
    cells = [f"{r[k]:.3f} ({r[k + '_chance']:.3f})" for k, _ in COLUMNS]
    ratio = r["attr_colour"] / max(r["attr_colour_chance"], 1e-9)
    quad = " / ".join(f"{r[f'attr_quadrant_{q}']:.2f}" for q in ("kind", "colour", "size")) + " (" + \
        " / ".join(f"{r[f'attr_quadrant_{q}_chance']:.2f}" for q in ("kind", "colour", "size")) + ")"
    lines.append(f"| {r['setting']} | {r['rerank']} | " + " | ".join(cells) +
                 f" | {ratio:.1f}x | {quad} | {r['clip_score']:.2f} | {r['fid']:.0f} | {r['precision']:.3f} | "
                 f"{r['recall']:.3f} |")
  v = results.get("variations")
  if v:
    lines += ["", "| variations | " + " | ".join(label for _, label in COLUMNS) + " |",
              "|---|" + "---|" * len(COLUMNS),
              "| variation vs its source | " + " | ".join(f"{v[k]:.3f}" for k, _ in COLUMNS) + " |",
              "| variation vs a random image (chance) | " + " | ".join(f"{v[k + '_chance']:.3f}" for k, _ in COLUMNS)
              + " |",
              "| the sources themselves | " + " | ".join(f"{v['sources'][k]:.3f}" for k, _ in COLUMNS) + " |"]
  return "\n".join(lines) + "\n"


def main(argv=None):
  import argparse
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--decoder", required=True)
  p.add_argument("--prior", default=None)
  p.add_argument("--captions", type=int, default=100)
  p.add_argument("--rerank", default="1,4,16")
  p.add_argument("--guidance", default="0,3")
  p.add_argument("--variations", type=int, default=100)
  p.add_argument("--num_variations", type=int, default=4)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", default=None)
  a = p.parse_args(argv)
  try:
    ks = tuple(int(x) for x in a.rerank.split(","))
    gs = tuple(float(x) for x in a.guidance.split(","))
  except ValueError:
    p.error(f"--rerank={a.rerank!r} and --guidance={a.guidance!r} must be comma-separated numbers")
  if min(ks) < 1 or min(gs) < 0 or a.captions < 1:
    p.error(f"--rerank={a.rerank} must be >= 1, --guidance={a.guidance} >= 0, --captions={a.captions} >= 1")
  from jaxgen.train import runtime
  runtime.set_xla_cpu_flags()
  from jaxgen.unclip.pipeline import load_unclip
  pipe = load_unclip(a.decoder, a.prior)
  out = a.out or os.path.join(a.decoder, "eval", "unclip")
  res = evaluate_unclip(pipe, captions=a.captions, rerank=ks, guidance=gs, variations=a.variations,
                        num_variations=a.num_variations, seed=a.seed, out=out)
  print(markdown_table(res))


if __name__ == "__main__":
  main()
