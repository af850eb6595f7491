"""Progressive growing's schedule (Karras et al. 2018, sec. 3): the growth level as a pure function of the step,
and the real images at that level.

With `phase_steps` = T and L levels (4x4 .. full resolution), a run spends T steps at 4x4, then for each further
level T steps fading it in (alpha rising linearly from 0 to 1) and T steps stabilising it; after 4x4 + (L - 1)
fades and stabilisations (T (2L - 1) steps) it stays at the full resolution. The level is a float: p at level p's
resolution, p - 1 + alpha while level p fades in (jaxgen.nn.progan.branch_and_alpha splits it). Everything is
a function of the step, so a run killed mid-fade resumes on the same trajectory from its checkpoint's step.
The phase of a step (`phase`: the level being trained, ceil(level), an int computed on the host) is what the
trainer compiles one step for (jaxgen.train.family): `at_phase(p)` is the schedule with p as its static `branch`,
which the networks and `reals` then run alone.

The reals follow the same fade (the paper's "we similarly fade in the real images"): at level p - 1 + alpha they
are (1 - alpha) * upsample(pool(x, p - 1)) + alpha * pool(x, p), where pool(x, q) averages x down to level q's
resolution; then nearest-upsampled back to the full resolution so that every tensor keeps its shape.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Growth:
  phase_steps: int                 # T: steps of the 4x4 phase, of each fade-in and of each stabilisation
  num_levels: int                  # L: 4x4 .. full resolution
  resolution: int                  # the full resolution (the data's)
  branch: Optional[int] = None     # the phase being compiled (at_phase): its level only; None: any level

  @property
  def total_steps(self) -> int:
    """The step from which the run is at the full resolution."""
    return self.phase_steps * (2 * self.num_levels - 1)

  def phase(self, step: int) -> int:
    """ceil(level(step)) for a host int step, in integer arithmetic: the level being trained (while level p
    fades in, p)."""
    t = int(step) - self.phase_steps
    if t < 0:
      return 0
    k, r = divmod(t, 2 * self.phase_steps)
    return min(k + (1 if r > 0 else 0), self.num_levels - 1)

  def at_phase(self, branch: int) -> "Growth":
    if not isinstance(branch, int) or not 0 <= branch < self.num_levels:
      raise ValueError(f"growth phase {branch!r}: a level index in 0 .. {self.num_levels - 1}")
    return dataclasses.replace(self, branch=branch)

  def level(self, step):
    """The growth level at `step` (float32 scalar in [0, L - 1])."""
    t = jnp.asarray(step, jnp.float32) - self.phase_steps
    k = jnp.floor(t / (2 * self.phase_steps))
    r = t - 2 * self.phase_steps * k
    level = k + jnp.minimum(r / self.phase_steps, 1.0)
    return jnp.where(t < 0, 0.0, jnp.minimum(level, self.num_levels - 1)).astype(jnp.float32)

  def reals(self, x, level):
    """Full-resolution images x (B, H, W, C) as the discriminator sees reals at `level`."""
    from jaxgen.nn.progan import branch_and_alpha, downsample, static_branch_alpha, upsample

    def at(p, alpha):
      f = self.resolution // (4 * 2 ** p)
      x_p = downsample(x, f)
      if p > 0:
        x_p = alpha * x_p + (1.0 - alpha) * upsample(downsample(x_p))
      return upsample(x_p, f)

    if self.branch is not None:
      return at(self.branch, static_branch_alpha(level, self.branch))
    b, alpha = branch_and_alpha(level)
    out = jnp.zeros_like(x)
    for p in range(self.num_levels):             # a few cheap poolings; the level's own is selected
      out = jnp.where(b == p, at(p, alpha), out)
    return out
