"""The digits sample-quality probe as an evaluation: draw samples, score them with a classifier of real digits.

One way to grade digits samples for every family. `probe_scores(images, labels)` scores images (and, for a
conditional model, whether each shows the class it was asked for); `make_probe_eval` is the trainer
`eval_fn` factory. Metrics (section 'samples'):
  probe_mean_confidence     mean max class probability (real test digits ~0.91, pixel noise ~0.6)
  probe_confident_fraction  samples whose max probability > 0.9
  probe_classes_covered     classes holding >= 2% of the samples
  probe_min_class_fraction  the rarest class's share
  probe_label_agreement     conditional models: the probe's label equals the asked class
The probe is jaxgen.eval.digits_classifier's logistic regression, fitted once per process.
"""
from __future__ import annotations

import functools
from typing import Dict, Optional

import jax
import numpy as np

from jaxgen.eval.digits_classifier import fit_digits_classifier, score_digit_samples, to_unit_pixels
from jaxgen.train.family import grid_labels

PROBE_SEED = 0xE7A1


@functools.lru_cache(maxsize=1)
def digits_probe():
  return fit_digits_classifier(seed=0)


def probe_predict(images) -> np.ndarray:
  probe = digits_probe()
  return probe.model.predict(to_unit_pixels(images))


def probe_scores(images, labels: Optional[np.ndarray] = None, prefix: str = "samples/") -> Dict[str, float]:
  """Scores of digit images (uint8 or [-1, 1]); with `labels`, also the agreement with the asked classes."""
  s = score_digit_samples(digits_probe(), images)
  n = len(images)
  out = {"probe_mean_confidence": s["mean_confidence"], "probe_confident_fraction": s["confident_fraction"],
         "probe_classes_covered": float(s["classes_covered"]), "probe_min_class_fraction": min(s["class_counts"]) / n}
  if labels is not None:
    out["probe_label_agreement"] = float(np.mean(probe_predict(images) == np.asarray(labels)))
  return {prefix + k: v for k, v in out.items()}


def make_probe_eval(config, family, workdir=None):
  """eval_fn(state, step): probe scores of config.eval.probe_samples EMA samples (same noise at every eval);
  conditional families are asked for classes in equal runs. config.eval.sample_options (e.g. a flow's
  temperature) are passed to `family.sample`."""
  from jaxgen.train import parallel
  num = config.eval.probe_samples
  options = dict(config.eval.get("sample_options") or {})
  num_classes = getattr(family, "num_classes", 0)
  labels = grid_labels(num, num_classes) if num_classes else None
  mesh = parallel.make_data_mesh()
  cond = {"labels": labels} if num_classes else {}
  sample = jax.jit(lambda p, r: family.sample(p, r, num, **cond, **options), out_shardings=parallel.replicated(mesh))
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), PROBE_SEED)

  def eval_fn(state, step):
    images = parallel.fetch(sample(state.ema_params, rng))
    return probe_scores(images, None if labels is None else np.asarray(labels))

  return eval_fn
