"""The registry: from a config's `family`, `evals` and `study` names to the code that serves them.

A family entry names its builder (config -> family object), its validator (config -> None, raising ValueError
that names the bad value), its training-data function (config -> (start_step -> iterator of batches)) and the
evaluations it supports. An evaluation entry names its factory ((config, family, workdir) -> eval_fn(state,
step) -> {metric: value}), when it runs ('periodic': every config.eval_every steps and at the end; 'final':
at the end) and the data kinds it applies to. A study is a command over a finished run (load_run), not a
training run. Entries are 'module:function' strings, imported only when used, so looking a name up (and
validating a config) needs neither JAX nor TensorFlow.

Adding a family: one entry here, a builder and validator in its package, evaluations in jaxgen/eval
(docs/architecture.md walks through the DDPM as the example).
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class FamilyEntry:
  build: str
  validate: str
  evals: Tuple[str, ...]                       # the evaluations this family supports
  data_fn: str = "jaxgen.data:train_data_fn"


@dataclasses.dataclass(frozen=True)
class EvalEntry:
  factory: str
  when: str                                    # 'periodic' | 'final'
  data_kinds: Tuple[str, ...] = ("image",)
  datasets: Optional[Tuple[str, ...]] = None   # None: any data set of those kinds


FAMILIES = {
    "ddpm": FamilyEntry("jaxgen.diffusion.build:make_ddpm", "jaxgen.diffusion.build:validate_ddpm_config",
                        evals=("sample_metrics", "vlb", "diffusion_classifier", "mode_coverage")),
    "vae": FamilyEntry("jaxgen.vae.build:make_vae", "jaxgen.vae.build:validate_vae_config",
                       evals=("vae_heldout", "vae_figures", "sample_metrics")),
    "gan": FamilyEntry("jaxgen.gan.build:make_gan", "jaxgen.gan.build:validate_gan_config",
                       evals=("sample_metrics", "mode_coverage")),
    "flow": FamilyEntry("jaxgen.flows.build:make_flow", "jaxgen.flows.build:validate_flow_config",
                        evals=("flow_heldout", "flow_figures", "flow_density", "flow_classifier", "sample_metrics")),
}

EVALS = {
    "sample_metrics": EvalEntry("jaxgen.eval.sample_metrics:make_sample_eval", "periodic",
                                datasets=("digits", "shapes", "shapes_tiny", "cifar10")),
    "flow_heldout": EvalEntry("jaxgen.eval.likelihood:make_flow_heldout_eval", "periodic", ("image", "points")),
    "vlb": EvalEntry("jaxgen.eval.likelihood:make_ddpm_vlb_eval", "periodic", ("image", "points")),
    "diffusion_classifier": EvalEntry("jaxgen.eval.studies:make_diffusion_classifier_eval", "final"),
    "vae_heldout": EvalEntry("jaxgen.eval.likelihood:make_vae_heldout_eval", "periodic"),
    "flow_density": EvalEntry("jaxgen.eval.toy2d:make_flow_density_eval", "periodic", ("points",)),
    "mode_coverage": EvalEntry("jaxgen.eval.toy2d:make_mode_coverage_eval", "periodic", ("points",),
                               datasets=("eight_gaussians",)),
    "flow_figures": EvalEntry("jaxgen.eval.figures:make_flow_figures", "final"),
    "vae_figures": EvalEntry("jaxgen.eval.figures:make_vae_figures", "final"),
    "flow_classifier": EvalEntry("jaxgen.eval.studies:make_flow_classifier_eval", "final"),
}

STUDIES = {
    "flow_inverse": "jaxgen.eval.studies:run_inverse_study",
}


def resolve(path: str) -> Callable:
  module, name = path.split(":")
  return getattr(importlib.import_module(module), name)


def family_entry(name) -> FamilyEntry:
  try:
    return FAMILIES[name]
  except (KeyError, TypeError):
    raise ValueError(f"family={name!r}; choose one of: {', '.join(sorted(FAMILIES))}") from None


def validate_config(config) -> None:
  """The family's validator, then the evaluations: known, supported by the family, fit for the data."""
  from jaxgen.data.specs import get_dataset_spec
  entry = family_entry(config.get("family"))
  spec = get_dataset_spec(config.data.name)
  if spec.kind == "image":
    from jaxgen.data.streaming import check_pipeline
    check_pipeline(config.data)
  resolve(entry.validate)(config)
  for name in config.get("evals", ()):
    if name not in EVALS:
      raise ValueError(f"evals has {name!r}; choose from: {', '.join(sorted(EVALS))}")
    if name not in entry.evals:
      raise ValueError(f"evals has {name!r}, which family {config.family!r} does not support "
                       f"(its evaluations: {', '.join(entry.evals)})")
    e = EVALS[name]
    if spec.kind not in e.data_kinds or (e.datasets is not None and spec.name not in e.datasets):
      fit = ", ".join(e.datasets) if e.datasets else f"data sets of kind {'/'.join(e.data_kinds)}"
      raise ValueError(f"evals has {name!r}, which is for {fit}, not data.name={spec.name!r}")


def make_eval_fn(config, family, workdir: str):
  """One eval_fn(state, step) running every evaluation named in config.evals (final ones at the last step
  only), their metrics merged; None when there are none."""
  evals = [(EVALS[n].when, resolve(EVALS[n].factory)(config, family, workdir)) for n in config.get("evals", ())]
  if not evals:
    return None

  def eval_fn(state, step):
    out = {}
    for when, fn in evals:
      if when == "periodic" or step == config.num_train_steps:
        out.update(fn(state, step))
    return out
  return eval_fn
