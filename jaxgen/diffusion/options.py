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
MODEL_DEFAULTS = dict(num_classes=0, norm_eps=1e-6, flip_sin_to_cos=False, freq_shift=1.0, downsample_padding=0)


def timestep_subsequence(num_timesteps: int, steps: int, spacing: str = "even") -> np.ndarray:
  """`steps` increasing timestep indices in [0, T), always including T-1 (the sampler starts from pure noise)
  and 0 (it ends on the data). 'even': evenly spaced; 'quadratic': t_i ~ (i / (S-1))^2 (T-1), denser near the
  data (Song et al. 2021, used there for CIFAR-10). steps = 0 or T: every step."""
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
