"""Sample-quality evaluation during training, as a trainer `eval_fn`.

For models of the 8x8 `digits` data: draw samples with the EMA params and score them with the digits probe
(`jaxgen.eval.digits_classifier`): how confidently a classifier of real digits labels them, and how many of the
ten classes they cover. Real test digits score about 0.91 mean confidence with all 10 classes covered.
"""
from __future__ import annotations

from typing import Callable, Optional

import jax

from jaxgen.eval.digits_classifier import fit_digits_classifier, score_digit_samples


def digits_probe_eval_fn(config, family, num_samples: Optional[int] = None) -> Optional[Callable]:
  """An eval_fn(state, step) -> {probe_*: scalar} for digits runs; None for other data sets."""
  if config.data.name != "digits" or not hasattr(family, "sample"):
    return None
  from jaxgen.train import parallel, trainer
  num = num_samples or max(config.num_samples, 100)
  probe = fit_digits_classifier(seed=0)
  sampler = trainer.make_sampler(family, parallel.make_data_mesh(), num)
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0xE7A1)

  def eval_fn(state, step):
    images = parallel.fetch(sampler(state.ema_params, rng))
    s = score_digit_samples(probe, images)
    return {"probe_mean_confidence": s["mean_confidence"], "probe_confident_fraction": s["confident_fraction"],
            "probe_classes_covered": s["classes_covered"],
            "probe_min_class_fraction": min(s["class_counts"]) / num}

  return eval_fn
