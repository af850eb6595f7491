"""The evaluations' config fields and their validators (jaxgen.registry.EVALS[name].validate).

Each validator takes the experiment config, checks the fields its evaluation reads and raises ValueError naming
the field, its value and what is allowed; `registry.validate_config` calls it once per evaluation named in
config.evals, before anything compiles. A field several evaluations read (eval.batch_size) has one checker
here. JAX-free: validating a config compiles and imports nothing heavy.

  sample_metrics        eval.fid_samples, eval.batch_size, eval.feature_net_steps, eval.inception_weights,
                        eval.sample_options (checked by the family's declared sampling options)
  flow_heldout, vlb     eval.batch_size
  vae_heldout           eval.batch_size, eval.num_iwae_samples, eval.iwae_chunk
  flow_density          eval.batch_size, eval.grid_limit, eval.grid_size
  flow_figures          figures.temperatures, figures.manipulate
  diffusion_classifier  eval.batch_size, eval.classifier_timesteps, eval.classifier_score, baseline.steps,
                        model.num_classes (> 0)
  flow_classifier       eval.batch_size, baseline.steps, model.num_classes (> 0)
  clip_zero_shot        eval.batch_size, eval.probe_steps, eval.probe_learning_rate, eval.probe_train_examples,
                        eval.use_ema
  ldm_reconstruction    eval.batch_size, eval.reconstruction_examples
  latent_scale          eval.latent_scale_examples
"""
from __future__ import annotations

import math

from jaxgen.diffusion.options import CLASSIFIER_SCORES

# The diffusion classifier's fields, with the values an older config that lacks them gets.
DIFFUSION_CLASSIFIER_DEFAULTS = dict(classifier_timesteps=50, classifier_score="elbo")


def _get(config, field: str, default=None):
  node = config
  for part in field.split("."):
    if node is None or part not in node:
      return default
    node = node[part]
  return node


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def check_int(config, field: str, minimum: int, default=None) -> int:
  """config's `field` (dotted) as an int >= minimum, else ValueError naming it."""
  value = _get(config, field, default)
  if not _is_int(value) or value < minimum:
    raise ValueError(f"{field}={value!r} must be an integer >= {minimum}")
  return value


def validate_batch_size(config) -> None:
  """eval.batch_size: examples per evaluation batch, >= 1."""
  check_int(config, "eval.batch_size", 1)


def validate_sample_metrics(config) -> None:
  """The 'sample_metrics' evaluation: eval.fid_samples (>= 2: a covariance needs two), eval.batch_size,
  eval.feature_net_steps (0: the feature network's full training), eval.inception_weights (a path or None),
  eval.sample_options (keyword arguments of the family's `sample`, checked by its declared function)."""
  from jaxgen import registry
  check_int(config, "eval.fid_samples", 2)
  validate_batch_size(config)
  check_int(config, "eval.feature_net_steps", 0, default=0)
  weights = _get(config, "eval.inception_weights")
  if weights is not None and not isinstance(weights, str):
    raise ValueError(f"eval.inception_weights={weights!r} must be a path (or None: $JAXGEN_INCEPTION_WEIGHTS or "
                     "the default cache)")
  options = _get(config, "eval.sample_options") or {}
  if not hasattr(options, "keys"):
    raise ValueError(f"eval.sample_options={options!r} must be a dict of the family's sampling options")
  try:
    registry.apply_sample_options(config, dict(options))
  except (ValueError, TypeError) as e:
    raise ValueError(f"eval.sample_options={dict(options)!r}: {e}") from None


def validate_pair_agreement(config) -> None:
  """The 'pair_agreement' evaluation (CoGAN pairs): model.kind 'cogan', eval.fid_samples (>= 2), eval.batch_size,
  eval.feature_net_steps."""
  kind = _get(config, "model.kind")
  if kind != "cogan":
    raise ValueError(f"evals has 'pair_agreement', which grades CoGAN image pairs: it needs model.kind='cogan', "
                     f"not {kind!r}")
  check_int(config, "eval.fid_samples", 2)
  validate_batch_size(config)
  check_int(config, "eval.feature_net_steps", 0, default=0)


def validate_vae_heldout(config) -> None:
  """The 'vae_heldout' evaluation: eval.batch_size, eval.num_iwae_samples (k of IWAE-k), eval.iwae_chunk
  (importance samples per pass), each >= 1."""
  validate_batch_size(config)
  check_int(config, "eval.num_iwae_samples", 1)
  check_int(config, "eval.iwae_chunk", 1)


def validate_flow_density(config) -> None:
  """The 'flow_density' evaluation: eval.batch_size, eval.grid_limit (> 0: the grid spans [-limit, limit]^2),
  eval.grid_size (points per axis, >= 2)."""
  validate_batch_size(config)
  limit = _get(config, "eval.grid_limit")
  if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not (limit > 0 and math.isfinite(limit)):
    raise ValueError(f"eval.grid_limit={limit!r} must be a finite number > 0")
  check_int(config, "eval.grid_size", 2)


def validate_flow_figures(config) -> None:
  """The 'flow_figures' evaluation: figures.temperatures (a non-empty list of numbers > 0) and
  figures.manipulate (two different classes of the data set: the latent direction from the first to the
  second)."""
  from jaxgen.data.specs import get_dataset_spec
  temps = _get(config, "figures.temperatures")
  if (not isinstance(temps, (list, tuple)) or not temps or
      not all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 and math.isfinite(t)
              for t in temps)):
    raise ValueError(f"figures.temperatures={temps!r} must be a non-empty list of numbers > 0")
  pair = _get(config, "figures.manipulate")
  k = get_dataset_spec(config.data.name).num_classes
  if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(_is_int(c) for c in pair) or
      pair[0] == pair[1] or not all(0 <= c < k for c in pair)):
    raise ValueError(f"figures.manipulate={pair!r} must be two different classes in [0, {k}) of "
                     f"{config.data.name}")


def _classifier_common(config, kind: str) -> None:
  validate_batch_size(config)
  check_int(config, "baseline.steps", 1)
  if not _get(config, "model.num_classes", 0):
    raise ValueError(f"evals has '{kind}_classifier', which needs a class-conditional model: "
                     f"model.num_classes={_get(config, 'model.num_classes', 0)!r} (set it to the data's classes)")


def validate_diffusion_classifier(config) -> None:
  """The 'diffusion_classifier' evaluation: eval.classifier_timesteps (in [1, diffusion.num_timesteps]),
  eval.classifier_score (CLASSIFIER_SCORES), eval.batch_size, baseline.steps (the MLP's), a conditional model."""
  _classifier_common(config, "diffusion")
  d = DIFFUSION_CLASSIFIER_DEFAULTS
  steps = check_int(config, "eval.classifier_timesteps", 1, default=d["classifier_timesteps"])
  num_timesteps = _get(config, "diffusion.num_timesteps")
  if _is_int(num_timesteps) and steps > num_timesteps:
    raise ValueError(f"eval.classifier_timesteps={steps} must be <= diffusion.num_timesteps={num_timesteps}")
  score = _get(config, "eval.classifier_score", d["classifier_score"])
  if score not in CLASSIFIER_SCORES:
    raise ValueError(f"eval.classifier_score={score!r}; choose one of: {', '.join(CLASSIFIER_SCORES)}")


def validate_flow_classifier(config) -> None:
  """The 'flow_classifier' evaluation: eval.batch_size, baseline.steps, a class-conditional flow."""
  _classifier_common(config, "flow")


def validate_clip_zero_shot(config) -> None:
  """The 'clip_zero_shot' evaluation: eval.batch_size, eval.probe_steps (>= 1, the linear probe's Adam steps),
  eval.probe_learning_rate (> 0), eval.probe_train_examples (>= 2: training images the probe is fitted on),
  eval.use_ema (a bool: the EMA params instead of the trained ones)."""
  validate_batch_size(config)
  check_int(config, "eval.probe_steps", 1)
  check_int(config, "eval.probe_train_examples", 2)
  lr = _get(config, "eval.probe_learning_rate")
  if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (lr > 0 and math.isfinite(lr)):
    raise ValueError(f"eval.probe_learning_rate={lr!r} must be a finite number > 0")
  ema = _get(config, "eval.use_ema", False)
  if not isinstance(ema, bool):
    raise ValueError(f"eval.use_ema={ema!r} must be True or False")


def validate_ldm_reconstruction(config) -> None:
  """The 'ldm_reconstruction' evaluation: eval.batch_size, eval.reconstruction_examples (>= 2: held-out images
  reconstructed; default 1000)."""
  validate_batch_size(config)
  check_int(config, "eval.reconstruction_examples", 2, default=1000)


def validate_latent_scale(config) -> None:
  """The 'latent_scale' evaluation: eval.latent_scale_examples (>= 2: training images whose latents' std is
  taken; default 1000)."""
  check_int(config, "eval.latent_scale_examples", 2, default=1000)
