"""The registry: from a config's `family`, `evals` and `study` names to the code that serves them.

A family entry names its builder (config -> family object), its validator (config -> None, raising ValueError
that names the bad value), its training-data function (config -> (start_step -> iterator of batches)) and the
evaluations it supports, and declares what tools that hold no family object need to know: its parameter groups
(the names config.optim.groups may use), the config fields a resumed run may change besides the trainer's
(jaxgen.train.provenance), the metrics its loss logs, and the function that checks and applies sampling options
(experiments.sample, the 'sample_metrics' evaluation's eval.sample_options). An evaluation entry names its
factory ((config, family, workdir) -> eval_fn(state, step) -> {metric: value}), when it runs ('periodic': every
config.eval_every steps and at the end; 'final': at the end), the data kinds it applies to, its validator of the
config fields it reads (config -> None, ValueError naming the field) and the metrics it logs (fnmatch patterns:
'test/iwae*_bits_per_dim'). The sweep report's default metrics are the declared ones of a run's family and
evaluations. A study is a command over a finished run (load_run), not a training run. Entries are
'module:function' strings, imported only when used, so looking a name up needs neither JAX nor TensorFlow.

Adding a family: one entry here, a builder and validator in its package, evaluations in jaxgen/eval
(docs/architecture.md walks through the DDPM as the example).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import importlib
from typing import Callable, Dict, Iterable, List, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class FamilyEntry:
  """A family: its builder, validator and data, the evaluations it supports and its declarations."""
  build: str
  validate: str
  evals: Tuple[str, ...]                       # the evaluations this family supports
  data_fn: str = "jaxgen.data:train_data_fn"
  param_groups: Tuple[str, ...] = ("default",)  # its trainable groups (a config may add more: gan.extra_groups)
  safe_to_resume: Tuple[str, ...] = ()         # config fields (fnmatch patterns) a resumed run may change
  metrics: Tuple[str, ...] = ("train/loss",)   # what its loss / update logs, the headline first
  sample_options: Optional[str] = None         # (config, options) -> config with them applied; None: takes none
  run_files: Optional[str] = None              # (config, workdir) -> None: files saved with a run at its start


@dataclasses.dataclass(frozen=True)
class EvalEntry:
  """An evaluation: its factory, when it runs, the data it fits, its config validator and its metrics."""
  factory: str
  when: str                                    # 'periodic' | 'final'
  data_kinds: Tuple[str, ...] = ("image",)
  datasets: Optional[Tuple[str, ...]] = None   # None: any data set of those kinds
  validate: Optional[str] = None               # config -> None, ValueError naming the field; None: reads none
  metrics: Tuple[str, ...] = ()                # the metrics it logs (fnmatch patterns), the headline first


FAMILIES = {
    "ddpm": FamilyEntry("jaxgen.diffusion.build:make_ddpm", "jaxgen.diffusion.build:validate_ddpm_config",
                        data_fn="jaxgen.ldm.cache:ddpm_data_fn",
                        evals=("sample_metrics", "vlb", "diffusion_classifier", "mode_coverage"),
                        safe_to_resume=("diffusion.sampler", "diffusion.sample_steps", "diffusion.timestep_spacing",
                                        "diffusion.eta", "diffusion.guidance", "diffusion.variance",
                                        "diffusion.clip_x0",         # sampling only (jaxgen.diffusion.options)
                                        "model.remat"),              # the U-Net recomputes activations: same results
                        sample_options="jaxgen.diffusion.sampling_options:apply_sample_options"),
    "vae": FamilyEntry("jaxgen.vae.build:make_vae", "jaxgen.vae.build:validate_vae_config",
                       evals=("vae_heldout", "vae_figures", "sample_metrics"),
                       metrics=("train/loss", "train/elbo_bits_per_dim", "train/reconstruction_nats", "train/kl_nats")),
    "gan": FamilyEntry("jaxgen.gan.build:make_gan", "jaxgen.gan.build:validate_gan_config",
                       data_fn="jaxgen.gan.cogan:gan_data_fn",       # CoGAN's unpaired two-domain batches
                       evals=("sample_metrics", "mode_coverage", "pair_agreement"),
                       param_groups=("generator", "discriminator"), safe_to_resume=("gan.truncation", "gan.truncation_psi", "gan.bn_stats",
                                       "gan.standing_batches"),
                       metrics=("train/g_loss", "train/d_loss", "train/d_loss_real", "train/d_loss_fake",
                                "train/d_real_logit", "train/d_fake_logit", "train/gradient_penalty", "train/r1",
                                "train/drift", "train/growth_level", "train/ortho",
                                # GAN-CLS / GAN-INT (gan.matching_aware, gan.interpolation)
                                "train/d_loss_mismatch", "train/d_mismatch_logit", "train/g_loss_interp"),
                       sample_options="jaxgen.gan.sampling_options:apply_sample_options"),
    "flow": FamilyEntry("jaxgen.flows.build:make_flow", "jaxgen.flows.build:validate_flow_config",
                        evals=("flow_heldout", "flow_figures", "flow_density", "flow_classifier", "sample_metrics"),
                        metrics=("train/loss", "train/bits_per_dim", "train/nll_nats"),
                        sample_options="jaxgen.flows.build:apply_sample_options"),
    "clip": FamilyEntry("jaxgen.clip.build:make_clip", "jaxgen.clip.build:validate_clip_config",
                        evals=("clip_zero_shot",), param_groups=("default", "no_decay"),
                        run_files="jaxgen.clip.tokenizer:save_run_files",
                        metrics=("train/loss", "train/accuracy_i2t", "train/accuracy_t2i", "train/logit_scale")),
    # the first stage of latent diffusion: an autoencoder, not a generative model (no sample, no sample_metrics)
    "ldm_autoencoder": FamilyEntry("jaxgen.ldm.build:make_ldm_autoencoder",
                                   "jaxgen.ldm.build:validate_ldm_autoencoder_config",
                                   evals=("ldm_reconstruction", "latent_scale"),
                                   metrics=("train/loss", "train/psnr", "train/reconstruction", "train/kl")),
}

_EVAL_CONFIG = "jaxgen.eval.config:"           # the evaluations' config validators (no JAX import)

EVALS = {
    "sample_metrics": EvalEntry("jaxgen.eval.sample_metrics:make_sample_eval", "periodic",
                                datasets=("digits", "shapes", "shapes_tiny", "cifar10"),
                                validate=_EVAL_CONFIG + "validate_sample_metrics",
                                metrics=("samples/fid", "samples/kid", "samples/precision", "samples/recall",
                                         "samples/inception_score", "samples/classes_covered",
                                         "samples/label_accuracy", "samples/kid_std", "samples/inception_score_std",
                                         "samples/*_chance", "samples/attr_*")),
    "pair_agreement": EvalEntry("jaxgen.eval.pair_agreement:make_pair_agreement_eval", "periodic",
                                datasets=("digits", "shapes", "shapes_tiny"),
                                validate=_EVAL_CONFIG + "validate_pair_agreement",
                                metrics=("samples/pair_agreement", "samples/pair_agreement_chance",
                                         "samples/pair_agreement_*", "samples/a/*", "samples/b/*")),
    "flow_heldout": EvalEntry("jaxgen.eval.likelihood:make_flow_heldout_eval", "periodic", ("image", "points"),
                              validate=_EVAL_CONFIG + "validate_batch_size",
                              metrics=("test/bits_per_dim", "test/nll_nats", "test/bits_per_dim_raw",
                                       "test/nll_nats_raw", "test/num_examples")),
    "vlb": EvalEntry("jaxgen.eval.likelihood:make_ddpm_vlb_eval", "periodic", ("image", "points"),
                     validate=_EVAL_CONFIG + "validate_batch_size",
                     metrics=("test/bits_per_dim", "test/vlb_*_bits_per_dim", "test/nll_nats", "test/vlb_*_nats",
                              "test/true_entropy_nats", "test/num_examples")),
    "diffusion_classifier": EvalEntry("jaxgen.eval.studies:make_diffusion_classifier_eval", "final",
                                      validate=_EVAL_CONFIG + "validate_diffusion_classifier",
                                      metrics=("test/classifier_accuracy", "test/mlp_accuracy",
                                               "test/classifier_num_params", "test/mlp_num_params")),
    "vae_heldout": EvalEntry("jaxgen.eval.likelihood:make_vae_heldout_eval", "periodic",
                             validate=_EVAL_CONFIG + "validate_vae_heldout",
                             metrics=("test/elbo_bits_per_dim", "test/iwae*_bits_per_dim", "test/elbo_nats",
                                      "test/iwae*_nats")),
    "flow_density": EvalEntry("jaxgen.eval.toy2d:make_flow_density_eval", "periodic", ("points",),
                              validate=_EVAL_CONFIG + "validate_flow_density",
                              metrics=("test/kl_nats", "test/grid_mass", "test/true_entropy_nats")),
    "mode_coverage": EvalEntry("jaxgen.eval.toy2d:make_mode_coverage_eval", "periodic", ("points",),
                               datasets=("eight_gaussians",),
                               metrics=("samples/modes_covered", "samples/high_quality_fraction")),
    "flow_figures": EvalEntry("jaxgen.eval.figures:make_flow_figures", "final",
                              validate=_EVAL_CONFIG + "validate_flow_figures",
                              metrics=("samples/T*/fid", "samples/T*/*", "samples/manipulated_*_fraction")),
    "vae_figures": EvalEntry("jaxgen.eval.figures:make_vae_figures", "final"),
    "flow_classifier": EvalEntry("jaxgen.eval.studies:make_flow_classifier_eval", "final",
                                 validate=_EVAL_CONFIG + "validate_flow_classifier",
                                 metrics=("test/classifier_accuracy", "test/mlp_accuracy", "test/classifier_num_params",
                                          "test/mlp_num_params")),
    "clip_zero_shot": EvalEntry("jaxgen.eval.clip_zero_shot:make_clip_zero_shot_eval", "periodic",
                                datasets=("shapes", "shapes_tiny"), validate=_EVAL_CONFIG + "validate_clip_zero_shot",
                                metrics=("test/zero_shot_*_accuracy", "test/probe_*_accuracy", "test/*_chance",
                                         "test/retrieval_*", "test/num_*")),
    "ldm_reconstruction": EvalEntry("jaxgen.eval.ldm:make_ldm_reconstruction_eval", "periodic",
                                    validate=_EVAL_CONFIG + "validate_ldm_reconstruction",
                                    metrics=("test/psnr", "test/recon_*", "test/real_*", "test/num_examples")),
    "latent_scale": EvalEntry("jaxgen.eval.ldm:make_latent_scale_eval", "final",
                              validate=_EVAL_CONFIG + "validate_latent_scale",
                              metrics=("test/latent_scale", "test/latent_std")),
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
  """The family's validator, then the evaluations: known, supported by the family, fit for the data, and each
  evaluation's validator of the config fields it reads (once per evaluation)."""
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
  for name in dict.fromkeys(config.get("evals", ())):
    if EVALS[name].validate:
      resolve(EVALS[name].validate)(config)


def apply_sample_options(config, options: Dict):
  """`config` with the sampling `options` (keyword arguments of the family's `sample`, e.g. a DDPM's
  {'sampler': 'ddim', 'steps': 50}) applied, through the family's declared function; ValueError naming the
  option when the family takes no such option or the value is not allowed. No options: `config` itself."""
  if not options:
    return config
  entry = family_entry(config.get("family"))
  if entry.sample_options is None:
    raise ValueError(f"sampling options {', '.join(sorted(options))}: family {config.family!r} takes none")
  return resolve(entry.sample_options)(config, dict(options))


def options_to_config(config, options: Dict, section: str, fields: Dict[str, str], validate: Callable, what: str):
  """A copy of `config` with each sampling option set in its field of config.<section> (`fields`: option ->
  field) and checked by the family's validator `validate`, so each field's rule lives in one place; ValueError
  naming the unknown option or the bad value. The families' `sample_options` functions are this."""
  unknown = sorted(set(options) - set(fields))
  if unknown:
    raise ValueError(f"sampling option {unknown[0]!r} is not one of the {what}'s: {', '.join(fields)}")
  out = config.copy_and_resolve_references()
  with out.unlocked():
    for name, value in options.items():
      try:
        out[section][fields[name]] = value
      except TypeError as e:                     # ml_collections' type check: a string for an int, ...
        raise ValueError(f"sampling option {name}={value!r} ({section}.{fields[name]}): {e}") from None
  validate(out)
  return out


def declared_metrics(family: str, evals: Iterable[str] = ()) -> Tuple[str, ...]:
  """The metric patterns a run of `family` with evaluations `evals` logs: the evaluations' (in order), then
  the family's training metrics. Unknown names contribute nothing."""
  out: List[str] = []
  for name in evals:
    if name in EVALS:
      out += EVALS[name].metrics
  if family in FAMILIES:
    out += FAMILIES[family].metrics
  return tuple(dict.fromkeys(out))


def match_metrics(patterns: Iterable[str], names: Iterable[str]) -> List[str]:
  """The `names` that match `patterns` (fnmatch), in the patterns' order, each once."""
  names = list(names)
  out: List[str] = []
  for p in patterns:
    out += [n for n in names if fnmatch.fnmatchcase(n, p) and n not in out]
  return out


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
