"""The one trainer every model family uses.

A family is any object with
  init(rng, batch) -> params                      (batch: a global example batch, for data-dependent init)
  train_step(state, batch, rng) -> (state, metrics)   pure; metrics must contain 'loss'
  sample(params, rng, num) -> images in [-1, 1]   optional; drawn with the EMA params for sample grids
  make_optimizer(config) -> optax transformation   optional; default: Adam + warmup + clipping from config.optim
                                                   (a GAN returns one transformation over both players' params)
and `train(..., eval_fn=...)` takes an optional host-side evaluation, eval_fn(state, step) -> {name: scalar},
called every config.eval_every steps and at the end, its results written to metrics.jsonl.
The trainer owns the rest: optimizer and EMA (TrainState), the ('data',) device mesh, checkpoints and resume,
the non-finite guard, progress, metrics, TensorBoard and sample grids. It knows nothing of noise schedules,
log-dets or discriminators.
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
from typing import Any, Callable, Iterator, Optional

import jax
import numpy as np

from jaxgen.train import parallel
from jaxgen.train.checkpoint import Checkpointer
from jaxgen.data.image import signed_unit_to_uint8
from jaxgen.train.images import image_grid, plot_loss_curve, save_image_grid
from jaxgen.train.logging import MetricWriter, Progress, format_progress, log
from jaxgen.train.state import TrainState, learning_rate_schedule, make_optimizer

DataFn = Callable[[int], Iterator[Any]]   # start_step -> iterator of process-local numpy batches


class NonFiniteLossError(FloatingPointError):
  pass


class TrainingInterrupted(Exception):
  def __init__(self, signum: int, step: int, message: str):
    super().__init__(message)
    self.signum, self.step = signum, step


def validate_train_config(config, *, num_devices: int, num_processes: int = 1) -> None:
  """Raise ValueError naming the bad value; cheap, runs before anything compiles."""
  parallel.check_batch_size(config.batch_size, num_devices, num_processes)
  o = config.optim
  if not (isinstance(o.learning_rate, (int, float)) and math.isfinite(o.learning_rate) and o.learning_rate >= 0):
    raise ValueError(f"optim.learning_rate={o.learning_rate} must be a finite number >= 0")
  if o.warmup_steps < 0:
    raise ValueError(f"optim.warmup_steps={o.warmup_steps} must be >= 0")
  if not 0.0 <= o.ema_decay <= 1.0:
    raise ValueError(f"optim.ema_decay={o.ema_decay} must lie in [0, 1]")
  if o.get("grad_clip", 0.0) < 0:
    raise ValueError(f"optim.grad_clip={o.grad_clip} must be >= 0 (0 disables clipping)")
  if config.num_train_steps <= 0:
    raise ValueError(f"num_train_steps={config.num_train_steps} must be positive")
  for name in ("log_every", "checkpoint_every", "keep_checkpoints"):
    if config[name] <= 0:
      raise ValueError(f"{name}={config[name]} must be positive")
  for name in ("sample_every", "num_samples", "eval_every"):
    if name not in config:
      continue
    if config[name] < 0:
      raise ValueError(f"{name}={config[name]} must be >= 0 (0 disables)")


def create_train_state(family, config, mesh, example_batch=None) -> TrainState:
  """Initialise params, optimizer state and EMA, replicated over the mesh (one compiled call)."""
  tx = family.make_optimizer(config) if hasattr(family, "make_optimizer") else make_optimizer(config.optim)
  base = jax.random.PRNGKey(config.seed)
  init_rng, train_rng = jax.random.split(base)

  def init(init_rng, train_rng, batch):
    params = family.init(init_rng, batch)
    return TrainState.create(params=params, tx=tx, rng=train_rng, ema_decay=config.optim.ema_decay)

  repl = parallel.replicated(mesh)
  return jax.jit(init, out_shardings=repl)(init_rng, train_rng, example_batch)


def make_train_step(family, mesh):
  """The compiled step: batch sharded over 'data', state replicated and donated; key = fold_in(rng, step)."""
  repl, data = parallel.replicated(mesh), parallel.batch_sharding(mesh)

  def step(state, batch):
    return family.train_step(state, batch, state.step_rng())

  return jax.jit(step, in_shardings=(repl, data), out_shardings=(repl, repl), donate_argnums=(0,))


def make_sampler(family, mesh, num: int):
  repl = parallel.replicated(mesh)
  return jax.jit(lambda params, rng: family.sample(params, rng, num), out_shardings=repl)


class _SignalFlag:
  """Records SIGINT/SIGTERM so the loop can checkpoint and stop between steps."""

  def __init__(self):
    self.signum = None
    self._old = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for s in (signal.SIGINT, signal.SIGTERM):
        self._old[s] = signal.signal(s, self._handle)
    return self

  def _handle(self, signum, frame):
    if self.signum is not None:          # a second signal: stop at once
      raise KeyboardInterrupt
    self.signum = signum
    log.warning("received signal %d: saving a checkpoint after this step", signum)

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)


def train(family, config, workdir: str, data_fn: DataFn, *, config_dict: Optional[dict] = None,
          eval_fn: Optional[Callable[[TrainState, int], dict]] = None) -> TrainState:
  """Train `family` for config.num_train_steps, resuming from workdir/checkpoints when present."""
  is_main = jax.process_index() == 0
  validate_train_config(config, num_devices=jax.device_count(), num_processes=jax.process_count())
  mesh = parallel.make_data_mesh()
  writer = MetricWriter(workdir, enabled=is_main, tensorboard=config.get("tensorboard", True))
  writer.write_config(config_dict if config_dict is not None else config.to_dict())
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), max_to_keep=config.keep_checkpoints)

  start_step = ckpt.latest_step() or 0
  data_iter = data_fn(start_step)
  batch = parallel.global_batch(next(data_iter), mesh)
  state = create_train_state(family, config, mesh, batch)
  if start_step:
    state = ckpt.restore(state, start_step)
    _print(is_main, f"resumed from checkpoint at step {start_step} in {ckpt.directory}")
  total = config.num_train_steps
  lr_at = learning_rate_schedule(config.optim.learning_rate, config.optim.warmup_steps)

  t0 = time.perf_counter()
  train_step = make_train_step(family, mesh).lower(state, batch).compile()
  _print(is_main, f"compiled train step in {time.perf_counter() - t0:.1f} s on {jax.device_count()} device(s), "
                  f"{jax.process_count()} process(es); global batch {config.batch_size}")
  sampler = make_sampler(family, mesh, config.num_samples) if config.sample_every and config.num_samples and \
      hasattr(family, "sample") else None
  sample_rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0x5A3)   # same noise for every grid

  def save(step):
    if ckpt.save(step, state):
      _print(is_main, f"saving checkpoint {step} to {ckpt.directory}")

  def write_samples(step):
    if sampler is None:
      return
    images = parallel.fetch(sampler(state.ema_params, sample_rng))
    if is_main:
      path = save_image_grid(os.path.join(workdir, "samples", f"step_{step}.png"), images)
      writer.write_image(step, "samples", image_grid(signed_unit_to_uint8(images)))
      _print(True, f"wrote {path}")

  eval_every = config.get("eval_every", 0) if eval_fn is not None else 0
  progress = Progress(total, start_step, config.batch_size)
  step, pending, window = start_step, None, []

  def check(item):
    s, metrics = item
    host = parallel.fetch(metrics)
    bad = {k: float(v) for k, v in host.items() if np.ndim(v) == 0 and not np.isfinite(v)}
    if bad:
      ckpt.wait()
      raise NonFiniteLossError(
          f"non-finite {bad} at step {s}; training stopped. The last good checkpoint is step "
          f"{ckpt.latest_step()} in {ckpt.directory} (rerunning resumes from it; lower the learning rate or "
          f"check the data if it recurs)")
    window.append(host)

  with _SignalFlag() as flag:
    try:
      while step < total:
        if step > start_step:
          batch = parallel.global_batch(next(data_iter), mesh)
        state, metrics = train_step(state, batch)
        step += 1
        if pending is not None:
          check(pending)                 # the previous step: overlaps with this one
        pending = (step, metrics)
        if step == start_step + 1:
          progress.start(step)
        boundary = step % config.log_every == 0 or step % config.checkpoint_every == 0 or step == total \
            or flag.signum is not None or (sampler is not None and step % config.sample_every == 0) \
            or (eval_every and step % eval_every == 0)
        if not boundary:
          continue
        check(pending)
        pending = None
        if step % config.log_every == 0 or step == total:
          rates = progress.report(step)
          mean = {k: float(np.mean([m[k] for m in window])) for k in window[-1] if np.ndim(window[-1][k]) == 0}
          window.clear()
          mean.update(rates, learning_rate=float(lr_at(step)), elapsed_sec=time.perf_counter() - t0)
          writer.write_scalars(step, mean)
          _print(is_main, format_progress(step, total, mean["loss"], rates))
        if step % config.checkpoint_every == 0 or step == total or flag.signum is not None:
          save(step)
        if sampler is not None and (step % config.sample_every == 0 or step == total):
          write_samples(step)
        if eval_fn is not None and ((eval_every and step % eval_every == 0) or step == total):
          results = eval_fn(state, step)
          writer.write_scalars(step, results)
          _print(is_main, f"eval at step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
        if flag.signum is not None:
          ckpt.wait()
          raise TrainingInterrupted(flag.signum, step, f"interrupted by signal {flag.signum} at step {step}; "
                                    f"checkpoint saved in {ckpt.directory}; rerun the same command to resume")
    finally:
      ckpt.close()
      writer.flush()
  if is_main and os.path.exists(writer.metrics_path):
    plot_loss_curve(writer.metrics_path, os.path.join(workdir, "loss_curve.png"))
  _print(is_main, f"done: step {total}/{total}; this run trained {total - start_step} steps in "
                  f"{time.perf_counter() - t0:.1f} s; workdir {workdir}")
  return state


def _print(enabled: bool, message: str) -> None:
  if enabled:
    print(message, flush=True)
