r"""Score the samples of a finished digits run with the digits probe (jaxgen.eval.probe).

  python -m experiments.score_digit_samples workdirs/vae_digits_quick [num_samples]

Rebuilds the run from its workdir (jaxgen.train.run.load_run: the family, config and latest checkpoint),
draws `num_samples` (default 1000) samples with the EMA params and prints the probe's scores as JSON
(conditional models: also how often the probe's label is the class asked for).
"""
from __future__ import annotations

import json
import sys


def score(workdir: str, num: int = 1000) -> dict:
  import jax
  import numpy as np
  from jaxgen.eval.probe import probe_scores
  from jaxgen.train.family import grid_labels
  from jaxgen.train.run import load_run
  run = load_run(workdir)
  num_classes = getattr(run.family, "num_classes", 0)
  labels = grid_labels(num, num_classes) if num_classes else None
  cond = {"labels": labels} if num_classes else {}
  x = np.asarray(jax.jit(lambda p: run.family.sample(p, jax.random.PRNGKey(2024), num, **cond))(run.params))
  return {"step": run.step, "num_samples": num,
          **probe_scores(x, None if labels is None else np.asarray(labels), prefix="")}


if __name__ == "__main__":
  print(json.dumps(score(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000)))
