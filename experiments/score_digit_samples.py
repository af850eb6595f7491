r"""Score the samples of a finished digits run with the sklearn digits probe (jaxgen.eval.digits_classifier).

  python -m experiments.score_digit_samples vae_digits:quick workdirs/vae_digits_quick [num_samples]

Restores the latest checkpoint of the run, draws `num_samples` (default 1000) samples with the EMA params
and prints the probe's scores as JSON (for conditional GANs also the fraction classified as the class asked).
"""
from __future__ import annotations

import importlib
import json
import os
import sys


def score(spec: str, workdir: str, num: int = 1000) -> dict:
  import jax
  import numpy as np
  from jaxgen.eval.digits_classifier import _to_unit_pixels, fit_digits_classifier, score_digit_samples
  from jaxgen.train import parallel, trainer
  from jaxgen.train.checkpoint import Checkpointer
  module, preset = spec.split(":")
  config = importlib.import_module(f"experiments.{module}").get_config(preset)
  if module.startswith("vae"):
    from jaxgen.vae.build import make_vae as build
  else:
    from jaxgen.gan.build import make_gan as build
  saved = json.load(open(os.path.join(workdir, "config.json")))
  config.model.update(saved["config"]["model"])            # e.g. --config.model.num_classes=10 on the run
  family = build(config)
  mesh = parallel.make_data_mesh()
  state = trainer.create_train_state(family, config, mesh, None)
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
  step = ckpt.latest_step()
  state = ckpt.restore(state, step)
  ckpt.close()
  x = np.asarray(jax.jit(lambda p: family.sample(p, jax.random.PRNGKey(2024), num))(state.ema_params))
  probe = fit_digits_classifier(0)
  out = {"step": int(step), "num_samples": num, **score_digit_samples(probe, x)}
  if getattr(family, "num_classes", 0):
    pred = probe.model.predict(_to_unit_pixels(x))
    out["label_agreement"] = float(np.mean(pred == np.asarray(family.sample_labels(num))))
  return out


if __name__ == "__main__":
  print(json.dumps(score(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1000)))
