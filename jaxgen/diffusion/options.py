"""The DDPM family's option names and defaults, and timestep subsequences: NumPy only, so that experiment
configs and validation import no JAX."""
from __future__ import annotations

import numpy as np

PREDICTIONS = ("eps", "x0", "v")
WEIGHTINGS = ("simple", "snr", "min_snr")
VARIANCES = ("fixed_large", "fixed_small")
SAMPLERS = ("ancestral", "ddim")
SPACINGS = ("even", "quadratic")

# config.diffusion fields added after the first release, and config.model fields of the U-Net, with the
# values that reproduce the original behaviour (an older run's config builds the model it trained).
DIFFUSION_DEFAULTS = dict(prediction="eps", loss_weighting="simple", min_snr_gamma=5.0, label_dropout=0.1,
                          sampler="ancestral", sample_steps=0, timestep_spacing="even", eta=0.0, guidance=0.0)
MODEL_DEFAULTS = dict(num_classes=0, norm_eps=1e-6, flip_sin_to_cos=False, freq_shift=1.0, downsample_padding=0,
                      remat=False, dtype="float32", text_vocab=0, text_max_len=0, text_width=64, text_depth=2,
                      text_heads=4, cross_attn_heads=4, embed_dim=0, embed_tokens=4)
# config.model's optional fields of model.kind='prior_transformer' (unCLIP's prior, jaxgen.nn.prior_transformer;
# width, depth and num_heads are required): 0 = no text-embedding / token-feature condition.
PRIOR_DEFAULTS = dict(mlp_ratio=4.0, text_embed_dim=0, num_tokens=0, token_dim=0)
CLASSIFIER_SCORES = ("elbo", "eps_mse")    # jaxgen.diffusion.classifier: the ELBO, or Li et al.'s eps MSE
COMPUTE_DTYPES = ("float32", "bfloat16")   # the U-Net's compute dtype; parameters and the optimizer stay float32


MIN_TIMESTEPS = 2     # the reverse process's variance at t=0 is clipped to the posterior's at t=1 (Ho et al.)


def check_num_timesteps(num_timesteps) -> None:
  """diffusion.num_timesteps: an integer >= MIN_TIMESTEPS, else ValueError naming it. With T=1 there is no
  posterior variance at t=1 to clip the log variance at t=0 to (jaxgen.diffusion.schedules), and one step is
  no diffusion."""
  if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, (int, np.integer)) or \
      num_timesteps < MIN_TIMESTEPS:
    raise ValueError(f"diffusion.num_timesteps={num_timesteps!r} must be an integer >= {MIN_TIMESTEPS} (the "
                     "log variance at t=0 is clipped to the posterior variance at t=1)")


def timestep_subsequence(num_timesteps: int, steps: int, spacing: str = "even") -> np.ndarray:
  """`steps` increasing timestep indices in [0, T), always including T-1 (the sampler starts from pure noise)
  and 0 (it ends on the data). 'even': evenly spaced; 'quadratic': t_i ~ (i / (S-1))^2 (T-1), denser near the
  data (Song et al. 2021, used there for CIFAR-10). steps = 0 or T: every step."""
  check_num_timesteps(num_timesteps)
  if spacing not in SPACINGS:
    raise ValueError(f"timestep spacing={spacing!r}; choose one of: {', '.join(SPACINGS)}")
  if steps == 0:
    steps = num_timesteps
  if not 1 <= steps <= num_timesteps:
    raise ValueError(f"sampling steps={steps} must lie in [1, num_timesteps={num_timesteps}] (0 = all)")
  if steps == num_timesteps:
    return np.arange(num_timesteps)
  if steps == 1:
    return np.array([num_timesteps - 1])
  u = np.linspace(0.0, 1.0, steps)
  ts = np.round((u if spacing == "even" else u ** 2) * (num_timesteps - 1)).astype(np.int64)
  # Quadratic spacing collides near 0 for many steps: push repeats up by one (never past T-1).
  for i in range(1, steps):
    ts[i] = max(ts[i], ts[i - 1] + 1)
  if ts[-1] > num_timesteps - 1:
    raise ValueError(f"{steps} {spacing} steps do not fit in {num_timesteps} timesteps; use 'even' spacing")
  return ts


# The sampling options of DDPM.sample as command-line flags (experiments.sample, experiments.evaluate); unset
# flags leave the run's own config.diffusion values.
SAMPLING_FLAGS = ("sampler", "steps", "spacing", "eta", "guidance", "variance")
# Each sampling option (a keyword argument of DDPM.sample) is the config.diffusion field of this name.
SAMPLING_FIELDS = dict(sampler="sampler", steps="sample_steps", spacing="timestep_spacing", eta="eta",
                       guidance="guidance", variance="variance")


def define_sampling_flags() -> None:
  """Define the absl flags --sampler, --steps, --spacing, --eta, --guidance, --variance (default None)."""
  from absl import flags
  flags.DEFINE_string("sampler", None, f"diffusion: {' | '.join(SAMPLERS)} (default: the run's diffusion.sampler)")
  flags.DEFINE_integer("steps", None, "diffusion: sampling steps, 0 = all T (default: the run's)")
  flags.DEFINE_string("spacing", None, f"diffusion: timestep spacing {' | '.join(SPACINGS)} (default: the run's)")
  flags.DEFINE_float("eta", None, "diffusion: DDIM eta (0 deterministic, 1 the DDPM posterior)")
  flags.DEFINE_float("guidance", None, "diffusion: classifier-free guidance scale w (conditional runs)")
  flags.DEFINE_string("variance", None, f"diffusion: ancestral variance {' | '.join(VARIANCES)}")


def sampling_options(flag_values) -> dict:
  """{option: value} of the sampling flags that were given: keyword arguments of DDPM.sample."""
  return {f: getattr(flag_values, f) for f in SAMPLING_FLAGS if getattr(flag_values, f) is not None}
