"""A finished run of a family that does not sample (CLIP), evaluated by its own evaluations.

`experiments.evaluate --workdir=DIR` grades a sampling family by its samples (jaxgen.eval.sample_metrics); a
family whose registry entry supports no `sample_metrics` has nothing to sample, so the command runs the
evaluations its run names (`config.evals`; none named, e.g. a converted run: every evaluation the family supports
that fits its data set) on the latest checkpoint, as the trainer runs them during training. The record goes to
workdir/eval/metrics.json and workdir/eval/metrics.jsonl, and the metrics to the run's metrics.jsonl at the
checkpoint's step, as for a sampling family.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Tuple


def samples(family: str) -> bool:
  """Whether the registered family draws samples (supports `sample_metrics`). No JAX or TF import."""
  from jaxgen import registry
  entry = registry.FAMILIES.get(family)
  return entry is None or "sample_metrics" in entry.evals


def evaluations_of(config) -> Tuple[str, ...]:
  """The evaluations to run: config.evals, or every one the family supports that fits its data set."""
  from jaxgen import registry
  from jaxgen.data.specs import get_dataset_spec
  named = tuple(config.get("evals", ()) or ())
  if named:
    return named
  spec = get_dataset_spec(config.data.name)
  fits = lambda e: spec.kind in e.data_kinds and (e.datasets is None or spec.name in e.datasets)   # noqa: E731
  return tuple(n for n in registry.FAMILIES[config.family].evals if fits(registry.EVALS[n]))


def evaluate_state(config, family, state, step: int, workdir: str, log=print) -> Dict[str, float]:
  """The metrics of `evaluations_of(config)` on a train state (what the trainer's evaluation computes)."""
  from jaxgen import registry
  names = evaluations_of(config)
  if not names:
    raise ValueError(f"the {config.family!r} run in {workdir} names no evaluation and its family supports none "
                     f"for data set {config.data.name!r}")
  results = {}
  for name in names:
    log(f"evaluating {name} at step {step}")
    results.update(registry.resolve(registry.EVALS[name].factory)(config, family, workdir)(state, step))
  return {k: float(v) for k, v in results.items()}


def evaluate_run_evals(workdir: str, log=print) -> Dict:
  """Run the evaluations of the (non-sampling) run in `workdir` on its latest checkpoint; the record."""
  from jaxgen.train.logging import MetricWriter
  from jaxgen.train.run import load_run
  run = load_run(workdir)
  names = evaluations_of(run.config)
  results = evaluate_state(run.config, run.family, run.state, run.step, workdir, log=log)
  record = {"step": run.step, "evaluations": list(names), "metrics": results}
  os.makedirs(os.path.join(workdir, "eval"), exist_ok=True)
  with open(os.path.join(workdir, "eval", "metrics.json"), "w") as f:
    json.dump(record, f, indent=2)
  with open(os.path.join(workdir, "eval", "metrics.jsonl"), "a") as f:
    f.write(json.dumps(record) + "\n")
  MetricWriter(workdir, tensorboard=False).write_scalars(run.step, results)
  return record
