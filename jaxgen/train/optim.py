"""The trainer's optimizer: one optax transformation per parameter group, the groups named by the family.

A family labels every leaf of its params pytree with a group name (`param_labels`; default: every leaf is
'default'). Each trainable group gets Adam (AdamW when its weight_decay > 0) with linear warm-up, an optional
cosine decay (decay_steps > 0) and optional global-norm clipping over that group's gradients, its settings taken
from `config.optim` and overridden per group by `config.optim.groups.<group>` (e.g. a GAN's generator and
discriminator learning rates). Two labels are not trained:
  'frozen'  constants saved with the run (Glow's permutation and signs): the optimizer never touches them
            (no update, no weight decay, no state) and the EMA copies them (networks restored from another
            run are frozen parts instead, kept out of the state: jaxgen.train.frozen);
  'buffer'  values the family's own forward pass refreshes (spectral-norm power-iteration vectors), written
            through `StepContext.refresh_buffers`, never by the optimizer.
The state layout is optax.partition's (each group's transformation under `optax.masked` with its mask), and
`update` can apply a subset of the groups: a GAN updates the discriminator, then the generator against the
updated discriminator, each with its own transformation, in one compiled step.
The learning rate a group used for its last update is read back from its optimizer state
(`optax.inject_hyperparams`), so what is logged is what was applied.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import optax

DEFAULT_GROUP = "default"
FROZEN = "frozen"
BUFFER = "buffer"
NON_TRAINABLE = (FROZEN, BUFFER)
# The per-group settings and what each may be; config.optim holds them, config.optim.groups.<g> overrides them.
GROUP_FIELDS = ("learning_rate", "warmup_steps", "decay_steps", "grad_clip", "b1", "b2", "eps",
                "weight_decay")


def learning_rate_schedule(learning_rate: float, warmup_steps: int, decay_steps: int = 0) -> optax.Schedule:
  """Linear warmup from 0 to `learning_rate` over `warmup_steps`, then constant (Ho et al. 2020) when
  `decay_steps` is 0, or a cosine decay to 0 at step `decay_steps` (counted from step 0, warm-up included;
  Loshchilov & Hutter 2017, as CLIP and most ViT recipes) and 0 after it."""
  if decay_steps > 0:
    if warmup_steps <= 0:
      return optax.cosine_decay_schedule(learning_rate, decay_steps)
    return optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup_steps, decay_steps, end_value=0.0)
  if warmup_steps <= 0:
    return optax.constant_schedule(learning_rate)
  return optax.linear_schedule(0.0, learning_rate, warmup_steps)


def group_settings(optim_config, group: str) -> Dict[str, Any]:
  """config.optim's settings for `group`: the shared values, overridden by config.optim.groups[group]."""
  settings = {k: optim_config.get(k, _DEFAULTS[k]) for k in GROUP_FIELDS}
  overrides = (optim_config.get("groups") or {}).get(group) or {}
  settings.update({k: overrides[k] for k in overrides})
  return settings


_DEFAULTS = dict(learning_rate=1e-3, warmup_steps=0, decay_steps=0, grad_clip=0.0, b1=0.9, b2=0.999, eps=1e-8,
                 weight_decay=0.0)


FLOAT32_MAX = 3.4028234663852886e38


def check_learning_rate(name: str, lr) -> None:
  """ValueError unless `lr` is a number in [0, float32's largest] (the step computes in float32)."""
  if not (isinstance(lr, (int, float)) and math.isfinite(lr) and 0 <= lr <= FLOAT32_MAX):
    raise ValueError(f"{name}={lr} must be a finite number >= 0 that float32 can hold (<= {FLOAT32_MAX:.4g})")


def check_learning_rates(optim_config) -> None:
  """The learning rates of config.optim and config.optim.groups.*: cheap, before the family is built."""
  check_learning_rate("optim.learning_rate", optim_config.get("learning_rate", _DEFAULTS["learning_rate"]))
  for g, o in dict(optim_config.get("groups") or {}).items():
    if o and "learning_rate" in o:
      check_learning_rate(f"optim.groups.{g}.learning_rate", o["learning_rate"])


def check_optim_config(optim_config, groups: Sequence[str]) -> None:
  """ValueError naming the bad value; `groups` are the trainable groups the family declares."""
  overrides = dict(optim_config.get("groups") or {})
  unknown = sorted(set(overrides) - set(groups))
  if unknown:
    raise ValueError(f"optim.groups has {unknown}; this family's parameter groups are: {', '.join(groups)}")
  for g, o in overrides.items():
    bad = sorted(set(o or {}) - set(GROUP_FIELDS))
    if bad:
      raise ValueError(f"optim.groups.{g} has unknown fields {bad}; allowed: {', '.join(GROUP_FIELDS)}")
  for g in groups:
    s = group_settings(optim_config, g)
    where = "optim" if g not in overrides else f"optim.groups.{g}"
    check_learning_rate(f"{where}.learning_rate", s["learning_rate"])
    if s["warmup_steps"] < 0:
      raise ValueError(f"{where}.warmup_steps={s['warmup_steps']} must be >= 0")
    if not (isinstance(s["decay_steps"], int) and (s["decay_steps"] == 0 or s["decay_steps"] > s["warmup_steps"])):
      raise ValueError(f"{where}.decay_steps={s['decay_steps']!r} must be 0 (constant after the warm-up) or an "
                       f"integer > warmup_steps={s['warmup_steps']} (the step where the cosine decay reaches 0)")
    if not s["grad_clip"] >= 0:
      raise ValueError(f"{where}.grad_clip={s['grad_clip']} must be >= 0 (0 disables clipping)")
    if not s["weight_decay"] >= 0:
      raise ValueError(f"{where}.weight_decay={s['weight_decay']} must be >= 0 (0: Adam, > 0: AdamW)")
    for name in ("b1", "b2"):
      if not 0.0 <= s[name] < 1.0:
        raise ValueError(f"{where}.{name}={s[name]} must lie in [0, 1)")
    if not s["eps"] > 0:
      raise ValueError(f"{where}.eps={s['eps']} must be > 0")


def group_transformation(settings: Mapping[str, Any]) -> Tuple[optax.GradientTransformation, optax.Schedule]:
  """Adam or AdamW with the warm-up schedule, lr injected, behind a stateless placeholder where the clipping
  stood: `GroupOptimizer.update` clips by the group's global norm itself, so that one norm per group serves
  the clipping, the grad_norm metric and the step's finite check (three per-leaf reductions of the whole
  gradient each cost XLA a kernel per leaf, and the step's compile time). The placeholder keeps the optimizer
  state's layout (an empty state, then Adam's) that checkpoints already hold."""
  schedule = learning_rate_schedule(settings["learning_rate"], settings["warmup_steps"], settings["decay_steps"])
  kw = dict(learning_rate=schedule, b1=settings["b1"], b2=settings["b2"], eps=settings["eps"])
  if settings["weight_decay"] > 0:
    adam = optax.inject_hyperparams(optax.adamw)(weight_decay=settings["weight_decay"], **kw)
  else:
    adam = optax.inject_hyperparams(optax.adam)(**kw)
  return optax.chain(optax.identity(), adam), schedule


def _all_default(params):
  return jax.tree.map(lambda _: DEFAULT_GROUP, params)


@dataclasses.dataclass(frozen=True, eq=False)
class GroupOptimizer:
  """Per-group transformations over one params pytree. Static (hashed by identity): lives in TrainState."""
  transformations: Mapping[str, optax.GradientTransformation]   # trainable groups only
  schedules: Mapping[str, optax.Schedule]
  label_fn: Callable[[Any], Any] = _all_default
  grad_clips: Mapping[str, float] = dataclasses.field(default_factory=dict)   # group -> max global norm (0: none)

  @property
  def groups(self) -> Tuple[str, ...]:
    return tuple(self.transformations)

  def labels(self, params):
    labels = self.label_fn(params)
    found = set(jax.tree.leaves(labels))
    unknown = sorted(found - set(self.groups) - set(NON_TRAINABLE))
    if unknown:
      raise ValueError(f"parameter labels {unknown} have no optimizer group (groups: {', '.join(self.groups)})")
    return labels

  def _mask(self, labels, group):
    return jax.tree.map(lambda lab: lab == group, labels)

  def init(self, params) -> Dict[str, Any]:
    labels = self.labels(params)
    return {g: optax.masked(tx, self._mask(labels, g)).init(params) for g, tx in self.transformations.items()}

  def update(self, grads, opt_state, params, groups: Optional[Sequence[str]] = None):
    """(updates, new opt_state) for `groups` (default: all); every other leaf gets a zero update."""
    updates, new_state, _ = self.update_with_norms(grads, opt_state, params, groups)
    return updates, new_state

  def update_with_norms(self, grads, opt_state, params, groups: Optional[Sequence[str]] = None):
    """(updates, new opt_state, {group: global norm of its gradients before clipping}). A group with
    grad_clip > 0 has its gradients scaled by grad_clip / norm when the norm exceeds it (optax's
    clip_by_global_norm, over that group's leaves only)."""
    groups = self.groups if groups is None else tuple(groups)
    labels = self.labels(params)
    updates = jax.tree.map(jnp.zeros_like, params)
    new_state, norms = dict(opt_state), {}
    for g in groups:
      norms[g] = norm = global_norm(select(grads, labels, (g,)))
      clipped = grads
      max_norm = self.grad_clips.get(g, 0.0)
      if max_norm > 0:
        # One scalar factor, multiplied in: XLA fuses the product into each leaf's Adam update instead of
        # emitting a divide kernel per leaf (optax's select(norm < max, g, g / norm * max) is the same map).
        factor = jnp.where(norm < max_norm, 1.0, max_norm / norm)
        clipped = jax.tree.map(lambda t, lab, g=g: t * factor.astype(t.dtype) if lab == g else t, grads, labels)
      u, new_state[g] = optax.masked(self.transformations[g], self._mask(labels, g)).update(
          clipped, opt_state[g], params)
      updates = jax.tree.map(lambda cur, new, lab, g=g: new if lab == g else cur, updates, u, labels)
    return updates, new_state, norms

  @staticmethod
  def applied_learning_rate(group_state) -> jax.Array:
    """The learning rate of the group's last update, from its injected hyperparameters."""
    return group_state.inner_state[1].hyperparams["learning_rate"]


def make_group_optimizer(optim_config, groups: Sequence[str] = (DEFAULT_GROUP,),
                         label_fn: Optional[Callable] = None) -> GroupOptimizer:
  """The trainer's optimizer from config.optim for the family's trainable `groups` and labelling."""
  txs, schedules, clips = {}, {}, {}
  for g in groups:
    settings = group_settings(optim_config, g)
    txs[g], schedules[g] = group_transformation(settings)
    clips[g] = float(settings["grad_clip"])
  return GroupOptimizer(txs, schedules, label_fn or _all_default, clips)


SMALL_LEAF = 1 << 16     # leaves up to this many elements enter global_norm through one concatenation


def global_norm(leaves) -> jax.Array:
  """sqrt(sum of squares) over a list of arrays (optax.tree.norm's value, up to float rounding): a reduction per
  leaf for leaves of more than SMALL_LEAF elements and one reduction over the small ones concatenated. Each
  reduction is a kernel XLA compiles; a U-Net's ~200 biases and norm scales (a few MB in all) cost the compile
  1 s as their own kernels and nothing measurable as one."""
  small = [jnp.ravel(x).astype(jnp.float32) for x in leaves if x.size <= SMALL_LEAF]
  total = sum((jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves if x.size > SMALL_LEAF),
              jnp.zeros((), jnp.float32))
  if small:
    total = total + jnp.sum(jnp.square(jnp.concatenate(small)))
  return jnp.sqrt(total)


def select(tree, labels, wanted: Sequence[str]):
  """The leaves of `tree` whose label is in `wanted` (a flat list)."""
  return [x for x, lab in zip(jax.tree.leaves(tree), jax.tree.leaves(labels)) if lab in wanted]
