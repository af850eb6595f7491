"""The one trainer every model family uses (the family contract: jaxgen.train.family).

The trainer owns the update (jaxgen.train.step: gradients, per-group optimizers with clipping and warm-up,
EMA, the non-finite check), the ('data',) device mesh, checkpoints and resume, progress, metrics.jsonl,
TensorBoard and sample grids. It knows nothing of noise schedules, log-dets or discriminators.
`train(..., eval_fn=...)` takes an optional host-side evaluation, eval_fn(state, step) -> {name: scalar},
called every config.eval_every steps and at the end, its results written to metrics.jsonl.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterator, Optional

import jax
import numpy as np

from jaxgen.train import parallel
from jaxgen.train.checkpoint import CheckpointUnavailable, Checkpointer
from jaxgen.train.family import MultiStepFamily
from jaxgen.train.health import HEALTH_FILE, Health
from jaxgen.train.images import plot_loss_curves, save_samples_figure
from jaxgen.train.lock import WorkdirLock, WorkdirLocked
from jaxgen.train.logging import MetricWriter, Progress, format_progress
from jaxgen.train.optim import DEFAULT_GROUP, check_optim_config, make_group_optimizer
from jaxgen.train.state import TrainState
from jaxgen.train.signals import TrainingInterrupted, SignalFlag, StartupSignals  # noqa: F401
from jaxgen.train.step import train_step

DataFn = Callable[[int], Iterator[Any]]   # start_step -> iterator of process-local numpy batches


class NonFiniteLossError(FloatingPointError):
  pass


def param_groups(family) -> tuple:
  return tuple(getattr(family, "param_groups", (DEFAULT_GROUP,)))


def validate_train_config(config, *, num_devices: int, num_processes: int = 1,
                          groups=(DEFAULT_GROUP,)) -> None:
  """Raise ValueError naming the bad value; cheap, runs before anything compiles."""
  parallel.check_parallel_config(config, num_devices)
  parallel.check_batch_size(config.batch_size, num_devices // parallel.settings(config)["model_axis"],
                            num_processes)
  check_optim_config(config.optim, groups)
  if not 0.0 <= config.optim.ema_decay <= 1.0:
    raise ValueError(f"optim.ema_decay={config.optim.ema_decay} must lie in [0, 1]")
  if not (isinstance(config.optim.get("ema_start_step", 0), int) and config.optim.get("ema_start_step", 0) >= 0):
    raise ValueError(f"optim.ema_start_step={config.optim.get('ema_start_step')} must be an int >= 0")
  if not isinstance(config.optim.get("ema_warmup", False), bool):
    raise ValueError(f"optim.ema_warmup={config.optim.get('ema_warmup')!r} must be True or False")
  if config.num_train_steps <= 0:
    raise ValueError(f"num_train_steps={config.num_train_steps} must be positive")
  for name in ("log_every", "checkpoint_every", "keep_checkpoints"):
    if config[name] <= 0:
      raise ValueError(f"{name}={config[name]} must be positive")
  for name in ("sample_every", "num_samples", "eval_every"):
    if name in config and config[name] < 0:
      raise ValueError(f"{name}={config[name]} must be >= 0 (0 disables)")


def make_optimizer(family, config):
  return make_group_optimizer(config.optim, param_groups(family), getattr(family, "param_labels", None))


def _init_fn(family, config, opt):
  def init(init_rng, train_rng, batch):
    return TrainState.create(params=family.init(init_rng, batch), opt=opt, rng=train_rng,
                             ema_decay=config.optim.ema_decay, ema_start_step=config.optim.get("ema_start_step", 0),
                             ema_warmup=config.optim.get("ema_warmup", False),
                             ema_groups=getattr(family, "ema_groups", None))
  return init


def _rngs(config):
  return jax.random.split(jax.random.PRNGKey(config.seed))


def create_train_state(family, config, mesh, example_batch=None) -> TrainState:
  """Initialise params, optimizer state and EMA over the mesh (one compiled call): replicated, or sharded
  with parallel.strategy='fsdp' (jaxgen.train.parallel)."""
  init = _init_fn(family, config, make_optimizer(family, config))
  init_rng, train_rng = _rngs(config)
  shardings = parallel.state_shardings(jax.eval_shape(init, init_rng, train_rng, example_batch), mesh, config)
  return jax.jit(init, out_shardings=shardings)(init_rng, train_rng, example_batch)


def abstract_train_state(family, config, mesh, example_batch) -> TrainState:
  """The shapes, dtypes and shardings of create_train_state's result, computed without running it."""
  init = _init_fn(family, config, make_optimizer(family, config))
  init_rng, train_rng = _rngs(config)
  shapes = jax.eval_shape(init, init_rng, train_rng, example_batch)
  shardings = parallel.state_shardings(shapes, mesh, config)
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings)


def make_train_step(family, mesh, state_shardings=None, *, with_frozen: bool = False):
  """The compiled step(state, batch): batch sharded over 'data', state donated and kept in `state_shardings`
  (default: replicated; the trainer passes the state's own); key = fold_in(rng, step). `with_frozen`: the step
  is step(state, frozen, batch), the family's frozen parts (jaxgen.train.frozen) replicated, never donated."""
  if not (hasattr(family, "loss") or isinstance(family, MultiStepFamily)):
    raise TypeError(f"{type(family).__name__} implements neither loss(params, batch, rng) nor "
                    "update(state, batch, rng, opt) (jaxgen.train.family)")
  repl, data = parallel.replicated(mesh), parallel.batch_sharding(mesh)
  state_sh = repl if state_shardings is None else state_shardings
  if with_frozen:
    return jax.jit(lambda state, frozen, batch: train_step(family, state, batch, frozen),
                   in_shardings=(state_sh, repl, data), out_shardings=(state_sh, repl), donate_argnums=(0,))
  return jax.jit(lambda state, batch: train_step(family, state, batch), in_shardings=(state_sh, data),
                 out_shardings=(state_sh, repl), donate_argnums=(0,))


def phase_of(family, step: int):
  """The phase of the step at `step` (jaxgen.train.family): None for a family without phases."""
  phase = getattr(family, "phase", None)
  return None if phase is None else phase(int(step))


def phase_family(family, step: int):
  """(phase, the family the step at `step` compiles): a family with `phase(step)` gets one compiled step per
  phase, `family.at_phase(phase)`; any other family (or phase None) one for the run."""
  key = phase_of(family, step)
  return key, (family if key is None else family.at_phase(key))


def load_frozen_parts(family, workdir: str, mesh, *, has_checkpoint: bool, write: bool):
  """The family's frozen parts restored from their source runs (jaxgen.train.frozen), replicated on the mesh,
  checked against the workdir's record when it holds checkpoints; {} when the family has none."""
  from jaxgen.train import frozen as fz
  parts = getattr(family, "frozen_parts", None) or {}
  if not parts:
    return {}
  trees, records = fz.load_parts(parts)
  fz.check_records(workdir, records, has_checkpoint=has_checkpoint)
  if write:
    fz.write_records(workdir, records)
  return jax.device_put(trees, parallel.replicated(mesh))


def with_frozen(state: TrainState, frozen) -> TrainState:
  """A view of the state for sampling and evaluations: params and EMA params with the frozen parts merged in
  (never saved, never given to the optimizer)."""
  if not frozen:
    return state
  from jaxgen.train.frozen import merge
  return state.replace(params=merge(state.params, frozen), ema_params=merge(state.ema_params, frozen))


def make_sampler(family, mesh, num: int):
  repl = parallel.replicated(mesh)
  return jax.jit(lambda params, rng: family.sample(params, rng, num), out_shardings=repl)


def _first_non_finite(rows):
  """(step, {name: value}) of the first step whose metrics are not all finite (or whose update was not)."""
  for s, m in rows:
    bad = {k: float(v) for k, v in m.items() if np.ndim(v) == 0 and not np.isfinite(v)}
    if float(m.get("finite", 1.0)) != 1.0:
      bad["gradients or updated parameters"] = float("nan")
    if bad:
      return s, bad
  return None


def _window_means(rows):
  """'train/<name>': the mean over the window's steps; learning rates: the last step's (what it applied)."""
  last = rows[-1][1]
  return {f"train/{k}": float(last[k] if k.startswith("learning_rate") else np.mean([m[k] for _, m in rows]))
          for k in last if np.ndim(last[k]) == 0 and k != "finite"}


def train(family, config, workdir: str, data_fn: DataFn, *, config_dict: Optional[dict] = None,
          eval_fn: Optional[Callable[[TrainState, int], dict]] = None, sample_kind: Optional[str] = None,
          reference_points: Optional[np.ndarray] = None, allow_restart: bool = False) -> TrainState:
  """Train `family` for config.num_train_steps, resuming from workdir/checkpoints when present.

  sample_kind: 'image' (sample grids) or 'points' (scatter plots, over `reference_points` when given); the
  data set's kind (jaxgen.data.specs), inferred from the samples' rank when None.
  allow_restart: train from step 0 although every checkpoint of the workdir was moved to checkpoints/damaged/
  (refused otherwise: it would overwrite the run's metrics).
  """
  is_main = jax.process_index() == 0
  validate_train_config(config, num_devices=jax.device_count(), num_processes=jax.process_count(),
                        groups=param_groups(family))
  lock = WorkdirLock(workdir)
  try:
    with StartupSignals():            # before the lock is taken: a signal at any moment releases it
      _take_lock(workdir, is_main, lock)
      return _train(family, config, workdir, data_fn, config_dict, eval_fn, sample_kind, reference_points,
                    is_main, allow_restart)
  finally:
    lock.release()


def _take_lock(workdir: str, is_main: bool, lock: Optional[WorkdirLock] = None) -> WorkdirLock:
  """Process 0 takes the workdir lock; in a multi-host job every process learns whether it got it."""
  lock, error = lock or WorkdirLock(workdir), None
  if is_main:
    try:
      lock.acquire()
    except WorkdirLocked as e:
      error = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    ok = int(multihost_utils.broadcast_one_to_all(np.int32(error is None)))
    if not ok and error is None:
      error = WorkdirLocked(f"process 0 could not take the lock of workdir {workdir} (see its error)")
  if error is not None:
    raise error
  return lock


def _train(family, config, workdir, data_fn, config_dict, eval_fn, sample_kind, reference_points, is_main,
           allow_restart=False):
  mesh = parallel.make_mesh(config)
  writer = MetricWriter(workdir, enabled=is_main, tensorboard=config.get("tensorboard", True))
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), max_to_keep=config.keep_checkpoints)

  latest = ckpt.latest_step()
  if latest is None and ckpt.damaged() and not allow_restart:
    raise CheckpointUnavailable(
        f"no checkpoint in {ckpt.directory} can be restored and {len(ckpt.damaged())} damaged one(s) lie in "
        f"{os.path.join(ckpt.directory, 'damaged')}: starting again from step 0 would overwrite this run's "
        f"metrics; restore a copy, or pass --allow_restart to train from step 0 in this workdir")
  frozen = load_frozen_parts(family, workdir, mesh, has_checkpoint=latest is not None, write=is_main)
  if frozen:
    from jaxgen.train.frozen import nbytes
    _print(is_main, f"frozen parts {sorted(frozen)}: {nbytes(frozen) / 2**20:.2f} MiB restored from their runs "
                    f"(not saved in this run's checkpoints; {os.path.join(workdir, 'frozen.json')})")
  start_step = latest or 0
  data_iter = data_fn(start_step)
  batch = parallel.global_batch(next(data_iter), mesh)
  state = create_train_state(family, config, mesh, batch)
  if latest is not None:                     # a checkpoint at step 0 too (converted weights, jaxgen.diffusion)
    restored_step, state = ckpt.restore_latest(state)
    if restored_step != start_step:          # fell back over a damaged checkpoint: the data follow the step
      start_step = restored_step
      data_iter = data_fn(start_step)
      batch = parallel.global_batch(next(data_iter), mesh)
    _print(is_main, f"resumed from checkpoint at step {start_step} in {ckpt.directory}")
  writer.write_config(config_dict if config_dict is not None else config.to_dict())   # after a refused restore: untouched
  if is_main:
    writer.truncate_after(start_step)        # steps an interrupted run logged after its last checkpoint
  health = Health(os.path.join(workdir, HEALTH_FILE), enabled=is_main)
  health.seed_losses(writer.metrics_path, start_step)
  if health.reference is None:               # the run's first state: what a later checkpoint's norm is held to
    health.note(None, _param_norm(state))
  if latest is None and os.path.isdir(os.path.join(ckpt.directory, "diverged")):
    _print(is_main, f"note: starting from step 0: the checkpoints of the diverged run lie in "
                    f"{os.path.join(ckpt.directory, 'diverged')}")
  total = config.num_train_steps

  shardings = jax.tree.map(lambda x: x.sharding, state)
  compiled_steps = {}                        # phase -> compiled step; one entry unless the family has phases

  def step_for(step):
    """The compiled step for the phase of `step` (compiled on the phase's first step)."""
    key = phase_of(family, step)             # a host int per step; the phase's family only when it compiles
    if key not in compiled_steps:
      fam = family if key is None else family.at_phase(key)
      compiled_steps.clear()                 # a phase never comes back (phases are ordered by the step)
      what = "the train step" if key is None else f"the train step of phase {key!r}"
      _print(is_main, f"compiling {what} (once per {'run' if key is None else 'phase'}; tens of seconds for a "
                      f"large network on a CPU)")
      t1 = time.perf_counter()
      step_fn = make_train_step(fam, mesh, shardings, with_frozen=bool(frozen))
      if frozen:
        compiled = step_fn.lower(state, frozen, batch).compile()
        compiled_steps[key] = lambda st, b: compiled(st, frozen, b)   # noqa: E731
      else:
        compiled_steps[key] = step_fn.lower(state, batch).compile()
      done = "train step" if key is None else what
      _print(is_main, f"compiled {done} in {time.perf_counter() - t1:.1f} s on {jax.device_count()} device(s), "
                      f"{jax.process_count()} process(es); global batch {config.batch_size}")
    return compiled_steps[key]

  t0 = time.perf_counter()
  step_for(start_step)
  local, whole = parallel.bytes_per_device(state)
  strategy = parallel.settings(config)["strategy"]
  _print(is_main, f"train state: {local / 2**20:.2f} MiB per device of {whole / 2**20:.2f} MiB ({strategy}, mesh "
                  f"{dict(mesh.shape)})")
  sampler = make_sampler(family, mesh, config.num_samples) if config.sample_every and config.num_samples and \
      hasattr(family, "sample") else None
  sample_rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0x5A3)   # same noise for every grid

  saved = {"step": None}

  def save(step):
    saved["step"] = step
    health.note(step, _param_norm(state))
    if is_main:
      _write_pending(workdir, ckpt, step, logged)
    if ckpt.save(step, state):
      _print(is_main, f"saving checkpoint {step} to {ckpt.directory}")

  def write_samples(step):
    samples = parallel.fetch(sampler(with_frozen(state, frozen).ema_params, sample_rng))
    if is_main:
      path = os.path.join(workdir, "samples", f"step_{step}.png")
      grid = save_samples_figure(path, samples, sample_kind, reference_points, title=f"step {step} (EMA)")
      if grid is not None:
        writer.write_image(step, "samples", grid)
      _print(True, f"wrote {path}")

  eval_every = config.get("eval_every", 0) if eval_fn is not None else 0
  progress = Progress(total, start_step, config.batch_size, kind=sample_kind)
  step, window = start_step, []        # window: (step, device metrics) since the last boundary

  def check_window():
    """One host transfer per boundary: the metrics of every step since the last one, checked in order."""
    rows = [(s, parallel.fetch(m)) for s, m in window]
    window.clear()
    health.add_losses(rows)
    bad = _first_non_finite(rows)
    if bad is not None:
      ckpt.wait()
      raise NonFiniteLossError(f"non-finite {bad[1]} at step {bad[0]}; training stopped. "
                               + _diverged(ckpt, health, workdir, bad[0], is_main))
    return rows

  logged = _read_pending(workdir, start_step)   # the steps of the current log window before the resume
  with SignalFlag() as flag:
    try:
      while step < total:
        if step > start_step:
          batch = parallel.global_batch(next(data_iter), mesh)
        state, metrics = step_for(step)(state, batch)
        step += 1
        window.append((step, metrics))
        flag.reached(step)
        if step == start_step + 1:
          progress.start(step)
        boundary = step % config.log_every == 0 or step % config.checkpoint_every == 0 or step == total \
            or flag.signum is not None or (sampler is not None and step % config.sample_every == 0) \
            or (eval_every and step % eval_every == 0)
        if not boundary:
          continue
        logged.extend(check_window())
        at_log = step % config.log_every == 0 or step == total
        if at_log or (flag.signum is not None and logged):   # a step stopped between log boundaries is logged too
          rates = progress.report(step)
          mean = _window_means(logged)
          if at_log:
            logged.clear()                   # else kept: saved with the checkpoint, the resumed window's start
          mean.update({f"perf/{k}": v for k, v in rates.items()}, **{"perf/elapsed_sec": time.perf_counter() - t0})
          writer.write_scalars(step, mean)
          _print(is_main, format_progress(step, total, mean, rates))
        if step % config.checkpoint_every == 0 or step == total or flag.signum is not None:
          save(step)
        if sampler is not None and (step % config.sample_every == 0 or step == total):
          write_samples(step)
        if eval_fn is not None and ((eval_every and step % eval_every == 0) or step == total):
          results = eval_fn(with_frozen(state, frozen), step)
          writer.write_scalars(step, results)
          _print(is_main, f"eval at step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
        if flag.signum is not None:
          if saved["step"] != step:          # the signal came while this step's samples or evaluation ran
            save(step)
          ckpt.wait()
          raise TrainingInterrupted(flag.signum, step, f"interrupted by signal {flag.signum} at step {step}; "
                                    f"checkpoint saved in {ckpt.directory}; rerun the same command to resume")
    finally:
      ckpt.close()
      writer.flush()
  if is_main and os.path.exists(os.path.join(workdir, DIVERGED_FILE)):
    os.remove(os.path.join(workdir, DIVERGED_FILE))      # trained to the end since: the divergence is behind
  if is_main and os.path.exists(writer.metrics_path):
    plot_loss_curves(writer.metrics_path, os.path.join(workdir, "loss_curve.png"))
  _print(is_main, f"done: step {total}/{total}; this run trained {total - start_step} steps in "
                  f"{time.perf_counter() - t0:.1f} s; workdir {workdir}")
  return state


PENDING_FILE = "pending_metrics.json"


def _write_pending(workdir, ckpt, step, rows) -> None:
  """Save the host metrics of the steps since the last log row with checkpoint `step` (workdir/
  pending_metrics.json, keyed by step), so that the first row after a resume averages the same window as an
  uninterrupted run."""
  import json
  path = os.path.join(workdir, PENDING_FILE)
  try:
    with open(path) as f:
      pending = json.load(f)
  except (OSError, ValueError):
    pending = {}
  keep = {str(s) for s in ckpt.all_steps()}
  pending = {k: v for k, v in pending.items() if k in keep}
  pending[str(step)] = [[int(s), {k: float(v) for k, v in m.items() if np.ndim(v) == 0}] for s, m in rows]
  with open(path + ".tmp", "w") as f:
    json.dump(pending, f)
  os.replace(path + ".tmp", path)


def _read_pending(workdir, step) -> list:
  import json
  try:
    with open(os.path.join(workdir, PENDING_FILE)) as f:
      return [(int(s), m) for s, m in json.load(f).get(str(step), [])]
  except (OSError, ValueError):
    return []


def _param_norm(state) -> float:
  import optax
  return float(jax.jit(optax.tree.norm)(state.params))


DIVERGED_FILE = "diverged.json"


def _diverged(ckpt, health, workdir, step, is_main) -> str:
  """After a non-finite step: keep the last good checkpoint (jaxgen.train.health) as the latest, move the later
  ones to checkpoints/diverged/, record workdir/diverged.json (a rerun may then change the learning rate without
  --allow_config_change) and say what a rerun does."""
  import json
  steps = ckpt.all_steps()
  good, why = health.last_good(steps)
  moved = ckpt.move_diverged(good)
  if is_main:
    with open(os.path.join(workdir, DIVERGED_FILE), "w") as f:
      json.dump({"step": int(step), "last_good": good, "moved": moved}, f)
  text = f"{why[0].upper() + why[1:]}. " if why else ""
  if moved:
    text += (f"Checkpoint(s) {moved} were moved to {os.path.join(ckpt.directory, 'diverged')} (kept, not "
             f"deleted). ")
  if good is not None:
    text += (f"The last good checkpoint is step {good} in {ckpt.directory} (finite, its loss and parameter norm "
             f"within the run's own history): rerunning resumes from it")
  else:
    text += f"No good checkpoint is left in {ckpt.directory}: rerunning starts again from step 0"
  return (text + "; rerun with a lower optim.learning_rate (allowed after a divergence without "
          "--allow_config_change), or check the data if it recurs")


def _print(enabled: bool, message: str) -> None:
  if enabled:
    print(message, flush=True)
