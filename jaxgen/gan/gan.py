"""A GAN (Goodfellow et al. 2014) as a model family for the shared trainer: both players in one compiled step.

params = {'generator': variables, 'discriminator': variables}, each a flax variables dict: 'params' (trained)
and any other collection (spectral-norm vectors refined by the D forward pass, running statistics or a tracked
mean latent updated by the G forward pass): 'buffer' leaves, written only through `opt.refresh_buffers` after
the forward pass that computed them, and checkpointed with the rest.
The players' 'params' are parameter groups of the trainer's optimizer ('generator', 'discriminator'; their
learning rates, betas, warm-up and clipping in config.optim.groups); `group_rules` puts named sub-modules in
further groups of their own (e.g. (('generator/mapping', 'mapping'),): StyleGAN's mapping network with its
own learning rate), each updated with its player.
`update` is the trainer's multi-step hook: `n_critic` discriminator updates, each on its own slice of the
global batch (batch_size / n_critic examples) against a fixed generator, then one generator update against
the *updated* discriminator; the trainer then runs the EMA (by default of the generator's groups only,
`ema_groups`; samples use state.ema_params['generator']) and the step counter. R1 may be lazy (`r1_every`
= k: computed on steps with step % k == 0 and weighted by k, Karras et al. 2020), inside the same compiled step.
Conditional (`cond_features`, ('label',) when num_classes > 0): both players take a condition dict
(jaxgen.conditions) read from the batch. Images travel as uint8 ({'image'}; scaled to [-1, 1] here), 2-D toy
data as float ({'points'}). Settings are validated from the config (jaxgen.gan.build) before it is built.
A condition encoder (`conditioner`, jaxgen.conditioners, with its frozen CLIP in `frozen_parts`) turns the batch's
features (`cond_features`, e.g. ('tokens',)) into what the players read (`network_cond_features`, e.g.
('embedding',)) inside the step (`encode_cond`): Reed et al. 2016's text-to-image GAN.
Two options for any conditional GAN (Reed et al. 2016, sec. 4):
  matching_aware (GAN-CLS)  D also sees real images with mismatched conditions, labelled fake:
                 D loss = l_real(D(x, h)) + (l_fake(D(x, h_mis)) + l_fake(D(G(z, h), h))) / 2,
                 h_mis of example i = the condition of the next example in the batch (cyclically) whose source
                 condition (token ids, label) differs from i's (`mismatch_partners`), so that a batch that
                 happens to hold two equal captions never labels a true match fake; a batch whose examples all
                 ask for the same thing has no mismatch, and the term is left out (D loss = l_real + l_fake).
  interpolation (GAN-INT)   G is also trained on the interpolated embeddings h_int = beta h_i + (1 - beta) h_j of
                 pairs of the batch (j = i + 1 cyclically; beta = `interpolation_beta`, 0.5 in the paper), with
                 fresh latents, for which D has no real image: g_loss += l_G(D(G(z', h_int), h_int)); D is not
                 trained on them. Needs a continuous network condition ('embedding').
A stochastic generator (`stochastic_generator`: StyleGAN's noise inputs and style mixing) is called with
rngs={'noise': key} and train= (True in the step, False when sampling); `truncation_psi` (not None: StyleGAN's
truncation in W towards its tracked mean w) is passed to it as truncation_psi= when sampling.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import conditions
from jaxgen.data.image import uint8_to_signed_unit
from jaxgen.gan import losses, regularisers
from jaxgen.train.optim import BUFFER

PLAYERS = ("generator", "discriminator")
BN_STATS = ("batch", "running", "standing")   # the generator's batch-norm statistics when sampling


@dataclasses.dataclass(frozen=True)
class GAN:
  generator: nn.Module                   # (z[, cond]) -> samples
  discriminator: nn.Module               # (x[, cond]) -> logits (B,)
  data_shape: Tuple[int, ...]            # (H, W, C) for images, (2,) for toy points
  latent_dim: int
  loss: str = "non_saturating"
  gp_weight: float = 0.0                 # WGAN-GP lambda (10 in the paper); 0 disables
  r1_gamma: float = 0.0                  # R1 weight gamma (loss += gamma / 2 * R1); 0 disables
  r1_every: int = 1                      # lazy R1: every k steps, weighted by k
  n_critic: int = 1                      # discriminator updates per generator update
  num_classes: int = 0                   # > 0: class-conditional G and D (cond['label'] from batch['label'])
  truncation: float = 0.0                # > 0: sample z from N(0, I) truncated to [-t, t] at sampling time
  drift: float = 0.0                     # > 0: D loss += drift * E[D(x)^2] on reals (ProGAN's epsilon_drift)
  growth: Optional[Any] = None           # jaxgen.gan.growth.Growth: progressive growing (level from the step)
  group_rules: Tuple[Tuple[str, str], ...] = ()   # ('<player>/<top-level module>', group name)
  ortho_weight: float = 0.0              # > 0: G loss += w * BigGAN's orthogonal regulariser of G's kernels
  bn_stats: str = "batch"                # G's batch norm when sampling: 'batch' | 'running' | 'standing'
  standing_batches: int = 16             # 'standing': batches of G in training mode whose statistics are averaged
  standing_batch_size: int = 64
  ema_groups: Optional[Tuple[str, ...]] = None    # None: the generator's groups (set in __post_init__)
  conditioner: Any = None                # jaxgen.conditioners: batch features -> the players' condition
  frozen_parts: Mapping[str, Any] = dataclasses.field(default_factory=dict)   # {name: FrozenPart} (its CLIP)
  grid_cond: Optional[Dict[str, Any]] = None      # with a conditioner: the grid rows' source features (numpy)
  matching_aware: bool = False           # GAN-CLS: D also rejects real images with mismatched conditions
  interpolation: bool = False            # GAN-INT: G also trained on interpolated condition embeddings
  interpolation_beta: float = 0.5
  stochastic_generator: bool = False     # G(z, cond, *, train) draws from the rng stream 'noise' (StyleGAN)
  truncation_psi: Optional[float] = None  # StyleGAN: W truncation psi when sampling (1: none); None: no such input

  def __post_init__(self):
    if self.ema_groups is None:
      object.__setattr__(self, "ema_groups", self.player_groups("generator"))

  @property
  def is_image(self) -> bool:
    return len(self.data_shape) == 3

  @property
  def param_groups(self) -> Tuple[str, ...]:
    extra = tuple(dict.fromkeys(g for _, g in self.group_rules))
    return PLAYERS + extra

  def player_groups(self, player: str) -> Tuple[str, ...]:
    return (player,) + tuple(dict.fromkeys(g for prefix, g in self.group_rules if prefix.split("/")[0] == player))

  def _group(self, player: str, module: str) -> str:
    for prefix, group in self.group_rules:
      if prefix == f"{player}/{module}":
        return group
    return player

  def param_labels(self, params):
    """Each player's 'params' collection is its group (or a `group_rules` group per top-level module); every
    other collection (spectral vectors, running statistics) a buffer."""
    for prefix, group in self.group_rules:
      player, module = prefix.split("/")
      if module not in params[player].get("params", {}):
        raise ValueError(f"parameter group {group!r} names {prefix!r}, but the {player}'s top-level modules are: "
                         f"{', '.join(params[player].get('params', {}))}")
    out = {}
    for player in PLAYERS:
      out[player] = {}
      for col, tree in params[player].items():
        if col == "params":
          out[player][col] = {m: jax.tree.map(lambda _, g=self._group(player, m): g, sub) for m, sub in tree.items()}
        else:
          out[player][col] = jax.tree.map(lambda _: BUFFER, tree)
    return out

  # -- conditions ---------------------------------------------------------------------------------------------
  @property
  def network_cond_features(self) -> Tuple[str, ...]:
    """The condition features the players read (after the condition encoder, if any)."""
    if self.conditioner is not None:
      return tuple(self.conditioner.outputs)
    return ("label",) if self.num_classes else ()

  @property
  def cond_features(self) -> Tuple[str, ...]:
    """The features read from a batch (or a held-out split, or a sampling command) as the condition: the
    condition encoder's inputs when there is one, else the players' features."""
    if self.conditioner is not None:
      return tuple(self.conditioner.inputs)
    return self.network_cond_features

  def encode_cond(self, params, cond):
    """The players' condition from `cond`: the condition encoder applied to its inputs (params: with the frozen
    parts merged in), or `cond` as it is when it already holds the players' features (or there is no encoder)."""
    if self.conditioner is None or not cond or set(cond) != set(self.conditioner.inputs):
      return cond
    return self.conditioner.encode(params, cond)

  def default_cond(self, num: int):
    """The conditions of a sample grid: classes in equal consecutive runs (one row per class); with a condition
    encoder, the source features of `grid_cond`'s held-out examples likewise (one row per example)."""
    if self.conditioner is not None:
      if self.grid_cond is None:
        raise ValueError(f"a GAN conditioned through {type(self.conditioner).__name__} draws its grid from "
                         "grid_cond; none was given: pass the condition")
      rows = conditions.grid_labels(num, len(next(iter(self.grid_cond.values()))))
      return {k: jnp.asarray(v)[rows] for k, v in self.grid_cond.items()}
    return {"label": conditions.grid_labels(num, self.num_classes)} if self.num_classes else None

  def _example_cond(self, num: int):
    if self.conditioner is not None:
      return {k: jnp.zeros((num,) + tuple(s), jnp.float32) for k, s in self.conditioner.shapes.items()}
    return {"label": jnp.zeros((num,), jnp.int32)} if self.num_classes else None

  def _args(self, cond):
    return (cond,) if self.network_cond_features else ()

  def _kw(self, level):
    """The growing networks' level keywords (only when the family grows and a level is given; the static
    branch of the phase being compiled, at_phase)."""
    if self.growth is None or level is None:
      return {}
    return {"level": level} if self.growth.branch is None else {"level": level, "branch": self.growth.branch}

  def phase(self, step: int):
    """A growing GAN's phase at `step` (the level it trains, jaxgen.gan.growth): the trainer compiles one step
    per phase (jaxgen.train.family); None for any other GAN."""
    return None if self.growth is None else self.growth.phase(step)

  def at_phase(self, phase):
    return self if phase is None else dataclasses.replace(self, growth=self.growth.at_phase(phase))

  # -- players ----------------------------------------------------------------------------------------------
  def generate(self, g_vars, z, cond=None, *, update_buffers: bool = False, level=None, rng=None,
               train: bool = False, **kwargs):
    """Samples G(z, cond); with `update_buffers` also the variables with the buffers its forward pass updated
    (running statistics, a tracked mean latent, the growth level): (samples, variables). A growing generator
    takes the step's `level`, or (None: sampling) the level it last trained at. A stochastic generator draws
    from `rng` (its 'noise' stream) and is told `train`; `kwargs` (truncation_psi) go to the generator."""
    kwargs = dict(self._kw(level), **kwargs)
    if self.stochastic_generator:
      kwargs = dict(kwargs, rngs={"noise": rng}, train=train)
    buffers = [c for c in g_vars if c != "params"]
    kw = self._kw(level)
    if update_buffers:
      if not buffers:
        return self.generator.apply(g_vars, z, *self._args(cond), **kwargs), g_vars
      x, mutated = self.generator.apply(g_vars, z, *self._args(cond), mutable=buffers, **kwargs)
      return x, {**g_vars, **mutated}
    return self.generator.apply(g_vars, z, *self._args(cond), **kwargs)

  def discriminate(self, d_vars, x, cond=None, *, update_spectral: bool = False, level=None):
    """Logits (B,), and the variables with refined spectral vectors when `update_spectral`."""
    kw = self._kw(level)
    if update_spectral and "spectral" in d_vars:
      logits, mutated = self.discriminator.apply(d_vars, x, *self._args(cond), mutable=["spectral"], **kw)
      return logits, {**d_vars, **mutated}
    return self.discriminator.apply(d_vars, x, *self._args(cond), **kw), d_vars

  def latents(self, rng, num: int, *, truncation: float = 0.0):
    if truncation > 0:
      return jax.random.truncated_normal(rng, -truncation, truncation, (num, self.latent_dim))
    return jax.random.normal(rng, (num, self.latent_dim))

  def init(self, rng, batch=None) -> Any:
    g_rng, d_rng = jax.random.split(rng)
    z = jnp.zeros((2, self.latent_dim), jnp.float32)
    cond = self._example_cond(2)
    g_init_rng = {"params": g_rng, "noise": jax.random.fold_in(g_rng, 1)} if self.stochastic_generator else g_rng
    g_vars = dict(self.generator.init(g_init_rng, z, *self._args(cond)))
    d_vars = dict(self.discriminator.init(d_rng, jnp.zeros((2,) + tuple(self.data_shape)), *self._args(cond)))
    return {"generator": g_vars, "discriminator": d_vars}

  # -- the train step (the trainer's multi-step hook) ---------------------------------------------------------
  def _inputs(self, batch):
    if self.is_image:
      return uint8_to_signed_unit(batch["image"])
    return jnp.asarray(batch["points"], jnp.float32)

  @staticmethod
  def _player_grads(params, player, grads):
    """A params-shaped gradient tree holding `grads` for the player's 'params' and zeros elsewhere."""
    full = jax.tree.map(jnp.zeros_like, params)
    full[player] = {**full[player], "params": grads}
    return full

  def _d_update(self, state, opt, real, cond, z_rng, gp_rng, mismatch=None, level=None):
    """One discriminator update on (real, G(z)) against the current generator: (state, metrics). `mismatch`
    (matching_aware): (the mismatched conditions, whether the batch has any), for the term on real images with
    mismatched conditions; `level`: a growing GAN's level at this step."""
    n = real.shape[0]
    g_vars, d_vars = state.params["generator"], state.params["discriminator"]
    fake = jax.lax.stop_gradient(self.generate(g_vars, self.latents(z_rng, n), cond, level=level,
                                               rng=jax.random.fold_in(z_rng, 1), train=True))

    def d_loss_fn(d_params):
      dv = {**d_vars, "params": d_params}
      real_logits, dv = self.discriminate(dv, real, cond, update_spectral=True, level=level)
      fake_logits, _ = self.discriminate(dv, fake, cond, level=level)
      loss, m = losses.discriminator_loss(self.loss, real_logits, fake_logits)
      if mismatch is not None:       # GAN-CLS: l_real + (l_fake(x, h_mis) + l_fake(G(z, h), h)) / 2
        mis_cond, has = mismatch
        mis_logits, _ = self.discriminate(dv, real, mis_cond, level=level)
        has = has.astype(jnp.float32)
        m["d_loss_mismatch"] = losses.discriminator_loss(self.loss, real_logits, mis_logits)[1]["d_loss_fake"]
        m["d_mismatch_logit"] = jnp.mean(mis_logits)
        loss = m["d_loss_real"] + (m["d_loss_fake"] + has * m["d_loss_mismatch"]) / (1.0 + has)
      if self.drift:
        m["drift"] = jnp.mean(jnp.square(real_logits.astype(jnp.float32)))
        loss = loss + self.drift * m["drift"]
      d_fn = lambda x: self.discriminate(dv, x, cond, level=level)[0]   # noqa: E731
      if self.gp_weight:
        m["gradient_penalty"] = regularisers.gradient_penalty(d_fn, real, fake, gp_rng)
        loss = loss + self.gp_weight * m["gradient_penalty"]
      if self.r1_gamma:
        if self.r1_every == 1:
          m["r1"] = regularisers.r1_penalty(d_fn, real)
          loss = loss + 0.5 * self.r1_gamma * m["r1"]
        else:                        # lazy: on every k-th step only, weighted by k (one compiled step)
          on = state.step % self.r1_every == 0
          m["r1"] = jax.lax.cond(on, lambda: regularisers.r1_penalty(d_fn, real), lambda: jnp.zeros((), jnp.float32))
          loss = loss + 0.5 * self.r1_gamma * self.r1_every * m["r1"]
      m.update(d_loss=loss, d_real_logit=jnp.mean(real_logits), d_fake_logit=jnp.mean(fake_logits))
      return loss, (m, dv)

    (_, (d_metrics, refined)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_vars["params"])
    state = opt.refresh_buffers(state, {**state.params, "discriminator": refined})
    state = opt.optimize(state, self._player_grads(state.params, "discriminator", d_grads),
                         groups=self.player_groups("discriminator"))
    return state, d_metrics

  def update(self, state, batch, rng, opt):
    real = self._inputs(batch)
    source = conditions.from_batch(batch, self.cond_features)
    if source:
      source = {k: v.astype(jnp.int32) if k in ("label", "tokens") else v for k, v in source.items()}
    cond = source
    if self.conditioner is not None:  # e.g. the frozen CLIP's text embedding of the caption's tokens
      cond = jax.lax.stop_gradient(self.encode_cond(opt.params(state), source))
    k = self.n_critic
    n = real.shape[0] // k
    z_d_rng, z_g_rng, gp_rng = jax.random.split(rng, 3)
    level = None
    if self.growth is not None:      # progressive growing: the level and the reals' resolution from the step
      level = self.growth.level(state.step)
      real = self.growth.reals(real, level)

    # 1. n_critic discriminator updates, each on its own slice of the batch, against a fixed generator
    rows = []
    for i in range(k):
      part = slice(i * n, (i + 1) * n)
      z_i, gp_i = (z_d_rng, gp_rng) if i == 0 else (jax.random.fold_in(z_d_rng, i), jax.random.fold_in(gp_rng, i))
      mismatch = None
      if self.matching_aware:
        partners, has = mismatch_partners(conditions.take(source, part))
        mismatch = (conditions.take(conditions.take(cond, part), partners), has)
      state, m = self._d_update(state, opt, real[part], conditions.take(cond, part), z_i, gp_i, mismatch, level)
      rows.append(m)
    d_metrics = rows[0] if k == 1 else {name: jnp.mean(jnp.stack([r[name] for r in rows])) for name in rows[0]}

    # 2. the generator, against the updated discriminator (the last slice's conditions)
    g_vars, d_vars = state.params["generator"], state.params["discriminator"]
    g_cond = conditions.take(cond, slice((k - 1) * n, k * n))

    def g_loss_fn(g_params):
      x, new_vars = self.generate({**g_vars, "params": g_params}, self.latents(z_g_rng, n), g_cond,
                                  update_buffers=True, level=level,
                                  rng=jax.random.fold_in(z_g_rng, 1), train=True)
      loss = losses.generator_loss(self.loss, self.discriminate(d_vars, x, g_cond, level=level)[0])
      m = {"g_loss": loss}
      if self.interpolation:         # GAN-INT: G(z', beta h_i + (1 - beta) h_(i+1)), fresh latents; no real image
        h_int = interpolate(g_cond, self.interpolation_beta)
        x_int = self.generate({**g_vars, "params": g_params}, self.latents(jax.random.fold_in(z_g_rng, 1), n), h_int,
                              level=level, rng=jax.random.fold_in(z_g_rng, 2), train=True)
        m["g_loss_interp"] = losses.generator_loss(self.loss, self.discriminate(d_vars, x_int, h_int, level=level)[0])
        loss = loss + m["g_loss_interp"]
        m["g_loss"] = loss
      if self.ortho_weight:          # BigGAN: beta * ||W^T W (1 - I)||_F^2 over G's kernels (g_loss without it)
        m["ortho"] = regularisers.orthogonal_regulariser(g_params)
        loss = loss + self.ortho_weight * m["ortho"]
      return loss, (m, new_vars)

    (_, (g_metrics, g_new)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g_vars["params"])
    if len(g_new) > 1:               # the generator's forward pass updated buffers
      state = opt.refresh_buffers(state, {**state.params, "generator": g_new})
    state = opt.optimize(state, self._player_grads(state.params, "generator", g_grads),
                         groups=self.player_groups("generator"))
    metrics = dict(d_metrics, **g_metrics)
    if level is not None:
      metrics["growth_level"] = level
    return state, metrics

  # -- sampling ---------------------------------------------------------------------------------------------
  def sample(self, params, rng, num: int, cond: Optional[Dict[str, Any]] = None,
             truncation: Optional[float] = None, truncation_psi: Optional[float] = None,
             bn_stats: Optional[str] = None):
    """`num` generator outputs (pass EMA params for the EMA generator, with the frozen parts merged in);
    conditional: `cond` (leading axis num: the encoder's inputs, e.g. caption tokens, or the players' features),
    by default `default_cond(num)`. `truncation`: of z; `truncation_psi`: in W (StyleGAN).
    `bn_stats` (default the family's): the generator's batch norm uses this batch's statistics ('batch'), its
    running statistics ('running', the 'batch_stats' buffers) or standing statistics recomputed from these params
    (`standing_stats`)."""
    t = self.truncation if truncation is None else truncation
    stats = self.bn_stats if bn_stats is None else bn_stats
    if self.cond_features and cond is None:
      cond = self.default_cond(num)
    if cond is not None and self.conditioner is not None:
      cond = self.encode_cond(params, {k: jnp.asarray(v) for k, v in cond.items()})
    conditions.check_cond(cond, self.network_cond_features, num, "this GAN")
    psi = self.truncation_psi if truncation_psi is None else truncation_psi
    if psi is not None and self.truncation_psi is None:
      raise ValueError(f"truncation_psi={psi}: this GAN's generator has no W space (StyleGAN's); use truncation")
    kw = {} if psi is None else {"truncation_psi": float(psi)}
    z = self.latents(rng, num, truncation=t)
    stats = self.bn_stats if bn_stats is None else bn_stats
    if stats == "batch":
      return self.generate(params["generator"], z, cond, rng=jax.random.fold_in(rng, 1), **kw)
    if stats not in BN_STATS:
      raise ValueError(f"bn_stats={stats!r}; choose one of: {', '.join(BN_STATS)}")
    g_vars = params["generator"]
    if stats == "standing":
      g_vars = {**g_vars, "batch_stats": self.standing_stats(g_vars, truncation=t)}
    return self.generator.apply(g_vars, z, *self._args(cond), use_running_average=True)

  def standing_stats(self, g_vars, rng=None, *, truncation: float = 0.0, num_batches: Optional[int] = None,
                     batch_size: Optional[int] = None):
    """BigGAN's standing statistics: the generator run in training mode (batch statistics) on `num_batches`
    batches of z (truncated like the samples) and uniformly drawn classes; each batch-norm layer's batch means
    and variances averaged over the batches. A 'batch_stats'-shaped tree; a pure function of the generator's
    variables (rng defaults to a fixed key), so the same params give bit-identical statistics."""
    from jaxgen.nn.biggan import MOMENTS
    rng = jax.random.PRNGKey(0) if rng is None else rng
    nb = num_batches or self.standing_batches
    bs = batch_size or self.standing_batch_size
    g_vars = {k: v for k, v in g_vars.items() if k != MOMENTS}

    def one(i):
      z_rng, y_rng = jax.random.split(jax.random.fold_in(rng, i))
      cond = ({"label": jax.random.randint(y_rng, (bs,), 0, self.num_classes, jnp.int32)}
              if self.num_classes else None)
      _, mut = self.generator.apply(g_vars, self.latents(z_rng, bs, truncation=truncation), *self._args(cond),
                                    mutable=[MOMENTS])
      return jax.tree.map(lambda t: t[0], mut[MOMENTS], is_leaf=lambda t: isinstance(t, tuple))

    return jax.tree.map(lambda a: jnp.mean(a, axis=0), jax.lax.map(one, jnp.arange(nb)))


def mismatch_partners(source):
  """GAN-CLS's mismatched conditions: for each example i of the batch, the index of the next example (i + 1,
  i + 2, ... cyclically) whose source condition (every feature: token ids, label) differs from i's, and whether
  any two examples differ (when none does, every index is i + 1 and the mismatch term must be left out).
  (partners int32 (B,), has bool scalar)."""
  leaves = [jnp.reshape(source[k], (source[k].shape[0], -1)) for k in sorted(source)]
  n = leaves[0].shape[0]
  if n < 2:
    return jnp.zeros((n,), jnp.int32), jnp.zeros((), bool)
  differ = jnp.zeros((n, n), bool)
  for a in leaves:
    differ = differ | jnp.any(a[:, None, :] != a[None, :, :], axis=-1)
  ahead = (jnp.arange(n)[:, None] + jnp.arange(1, n)[None, :]) % n            # (n, n - 1): i + 1, i + 2, ...
  first = jnp.argmax(jnp.take_along_axis(differ, ahead, axis=1), axis=1)     # 0 (i + 1) when none differs
  return ahead[jnp.arange(n), first].astype(jnp.int32), jnp.any(differ)


def interpolate(cond, beta: float):
  """GAN-INT's conditions: beta * h_i + (1 - beta) * h_(i+1) (cyclically) for every feature of `cond`."""
  return {k: beta * v + (1.0 - beta) * jnp.roll(v, -1, axis=0) for k, v in cond.items()}
