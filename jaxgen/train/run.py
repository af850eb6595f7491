"""Run an experiment, and rebuild a finished one: the steps every command shares, in the order they must happen.

`run` (what every experiment's main does):
  1. XLA flags and PRNG choice (before JAX starts), 2. join a multi-host job if asked, 3. validate the config
  (the family's rules, its evaluations, the trainer's fields: names the bad value, nothing compiled yet) and,
  on a workdir that holds a checkpoint, refuse a changed config (jaxgen.train.provenance), then record the
  start's provenance, 4. prepare the data (fails within seconds if it cannot), 5. train the family with the shared trainer, or,
  for a study config, run the study over a finished run.
`load_run(workdir)` reads the config.json a run wrote (it names the experiment and preset), rebuilds the family
through the registry and restores the state of the latest (or a given) checkpoint: the sample and evaluate
commands and the flow_inverse study use it, and so will a family that takes a frozen part of another run. (The
sweep does not: it runs experiments' command lines and reads their workdirs' files.)
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Dict, Optional

from jaxgen import registry
from jaxgen.train import runtime


class ConfigError(ValueError):
  """The config was rejected before anything compiled."""


def _validate(config, family=None):
  import jax
  from jaxgen.train import trainer
  try:
    registry.validate_config(config)
    if family is not None:
      trainer.validate_train_config(config, num_devices=jax.device_count(), num_processes=jax.process_count(),
                                    groups=trainer.param_groups(family))
  except ValueError as e:
    raise ConfigError(f"bad config: {e}") from e


def run_record(config, experiment: str, workdir: str) -> Dict[str, Any]:
  """What a run's config.json holds: enough for load_run to rebuild it."""
  return {"experiment": experiment, "preset": config.get("preset"), "config": config.to_dict(),
          "runtime": runtime.runtime_info(), "workdir": os.path.abspath(workdir)}


# Keys of an existing config.json that a later start keeps (what a converter recorded about the checkpoint).
KEPT_RECORD_KEYS = ("converted_from",)


def _start_record(config, experiment: str, workdir: str, *, allow_config_change: bool,
                  before_recording=None) -> Dict[str, Any]:
  """The config.json record of this start, after the config-change check (process 0 decides; in a multi-host
  job the others follow its verdict) and `before_recording()` (further checks that may refuse the run); appends
  the start to provenance.jsonl."""
  import jax
  from jaxgen.train import provenance
  error, changes = None, {}
  if jax.process_index() == 0:
    try:
      changes = provenance.check_config_change(workdir, config.to_dict(), allow=allow_config_change)
    except (provenance.ConfigChanged, provenance.BadRecord) as e:
      error = e
  if jax.process_count() > 1:
    import numpy as np
    from jax.experimental import multihost_utils
    ok = int(multihost_utils.broadcast_one_to_all(np.int32(error is None)))
    if not ok and error is None:
      error = provenance.ConfigChanged(f"process 0 refused to resume {workdir} with a changed config (see its error)")
  if error is not None:
    raise ConfigError(str(error)) from error
  if before_recording is not None:
    before_recording()
  record = run_record(config, experiment, workdir)
  if jax.process_index() == 0:
    previous = provenance.read_record(workdir)
    if previous is not None:
      record.update({k: previous[k] for k in KEPT_RECORD_KEYS if k in previous})
    experiment_file = getattr(sys.modules.get("__main__"), "__file__", None)   # the command's own file
    prov, diff = provenance.collect(experiment_file=experiment_file)
    record["provenance"] = provenance.record_start(workdir, prov, diff, start_step=_latest_step_on_disk(workdir),
                                                   config_changes=changes)
  return record


def _latest_step_on_disk(workdir: str) -> int:
  directory = os.path.join(workdir, "checkpoints")
  steps = [int(n) for n in os.listdir(directory) if n.isdigit()] if os.path.isdir(directory) else []
  return max(steps, default=0)


def run(config, workdir: str, *, experiment: str = "", multihost: bool = False,
        coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
        process_id: Optional[int] = None, allow_config_change: bool = False,
        heartbeat_timeout: Optional[int] = None, allow_restart: bool = False):
  runtime.configure_jax(config)
  if multihost:
    from jaxgen.train.parallel import initialize_distributed
    from jaxgen.train.parallel import HEARTBEAT_TIMEOUT
    initialize_distributed(coordinator_address, num_processes, process_id,
                           heartbeat_timeout=heartbeat_timeout or HEARTBEAT_TIMEOUT)
  if config.get("study"):
    return run_study(config, workdir, experiment=experiment)
  from jaxgen.data import get_dataset_spec, load_split
  from jaxgen.train import trainer
  _validate(config)
  entry = registry.family_entry(config.family)
  family = {}

  def build_and_check():              # after the config-change check, before anything is recorded
    family["f"] = registry.resolve(entry.build)(config)
    _validate(config, family["f"])
    check_checkpoint_shapes(family["f"], config, workdir)

  record = _start_record(config, experiment, workdir, allow_config_change=allow_config_change,
                         before_recording=build_and_check)
  family = family["f"]
  if entry.run_files:
    import jax
    if jax.process_index() == 0:
      registry.resolve(entry.run_files)(config, workdir)
  data_fn = registry.resolve(entry.data_fn)(config)
  spec = get_dataset_spec(config.data.name)
  reference = load_split(config, spec.eval_split)["points"][:2000] if spec.kind == "points" else None
  eval_fn = registry.make_eval_fn(config, family, workdir)
  return trainer.train(family, config, workdir, data_fn, config_dict=record,
                       eval_fn=eval_fn, sample_kind=spec.kind, reference_points=reference,
                       allow_restart=allow_restart)


def check_checkpoint_shapes(family, config, workdir: str) -> None:
  """ConfigError naming the fields when the workdir's newest readable checkpoint holds other shapes than this
  config's train state (a changed model size, with --allow_config_change or without config.json): refused
  before anything is written, nothing moved (jaxgen.train.checkpoint.CheckpointMismatch)."""
  from jaxgen.train import provenance
  if not provenance.has_checkpoint(workdir):
    return
  from jaxgen.data import example_batch
  from jaxgen.train import parallel, trainer
  from jaxgen.train.checkpoint import CheckpointMismatch, Checkpointer
  abstract = trainer.abstract_train_state(family, config, parallel.make_mesh(config), example_batch(config))
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
  try:
    ckpt.check_shapes(abstract)
  except CheckpointMismatch as e:
    raise ConfigError(str(e)) from e
  finally:
    ckpt.close()


# The family of the prior run each study restores (load_run's expect=): refused before anything is written.
STUDY_PRIOR_FAMILIES = {"flow_inverse": "flow"}


def run_study(config, workdir: str, *, experiment: str = "") -> Dict[str, Any]:
  """A study over a finished run (config.study names it in jaxgen.registry.STUDIES): results in workdir."""
  import jax
  from jaxgen.train.logging import MetricWriter
  if config.study not in registry.STUDIES:
    raise ConfigError(f"bad config: study={config.study!r}; choose one of: {', '.join(registry.STUDIES)}")
  source = config.get("prior_workdir")
  if not source or not os.path.exists(os.path.join(source, "config.json")):
    raise ConfigError(f"bad config: prior_workdir={source!r} holds no finished run (no config.json); train the "
                      f"prior first (see this experiment's docstring) or point --config.prior_workdir at its workdir")
  from jaxgen.train.provenance import BadRecord, read_record
  try:
    prior_family = (read_record(source).get("config") or {}).get("family")
  except BadRecord as e:
    raise ConfigError(f"bad config: prior_workdir={source!r}: {e}") from e
  wanted = STUDY_PRIOR_FAMILIES.get(config.study)
  if wanted is not None and prior_family != wanted:
    raise ConfigError(f"bad config: prior_workdir={source!r} holds a {prior_family!r} run; the {config.study} study "
                      f"needs a {wanted!r} run (e.g. experiments.glow_cifar)")
  writer = MetricWriter(workdir, enabled=jax.process_index() == 0, tensorboard=False)
  writer.write_config(_start_record(config, experiment, workdir, allow_config_change=False))
  results = registry.resolve(registry.STUDIES[config.study])(config, workdir)
  writer.write_scalars(int(results.get("prior_step", 0)),
                       {f"test/{k}": float(v) for k, v in results.items() if k != "prior_step"})
  print(f"{config.study} on {source}: " + ", ".join(f"{k} {v:.2f}" for k, v in results.items()), flush=True)
  return results


def check_paths(config, workdir: str) -> None:
  """ConfigError unless the workdir can be a run directory and data.data_dir, when given, is a directory."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(f"--workdir={workdir} is a file, not a directory")
  existing = workdir
  while existing and not os.path.exists(existing):
    existing = os.path.dirname(existing) or "."
  if not os.access(existing or ".", os.W_OK):
    raise ConfigError(f"--workdir={workdir} is not writable ({existing} does not allow writing)")
  data_dir = config.get("data", {}).get("data_dir") if "data" in config else None
  if data_dir and os.path.exists(os.path.expanduser(data_dir)) and not os.path.isdir(os.path.expanduser(data_dir)):
    raise ConfigError(f"--config.data.data_dir={data_dir} is not a directory")


def check_early(config, workdir: str) -> None:
  """ConfigError for what can be checked in a second, before TensorFlow and JAX start and before anything is
  written: the PRNG implementation, the learning rates (finite, within float32), and the workdir's config.json
  (readable JSON) when it has one."""
  from jaxgen.train import provenance
  try:
    runtime.check_prng_impl(config)
    if "optim" in config:
      from jaxgen.train.optim import check_learning_rates
      check_learning_rates(config.optim)
    provenance.read_record(workdir)
  except ValueError as e:
    raise ConfigError(f"bad config: {e}" if not isinstance(e, provenance.BadRecord) else str(e)) from e


def _uses_tensorflow(config) -> bool:
  """Whether the run loads TensorFlow (TFDS image data or TensorBoard): then it is imported first, quietly."""
  from jaxgen.data.specs import DATASETS
  spec = DATASETS.get(config.get("data", {}).get("name")) if "data" in config else None
  return bool(config.get("tensorboard", False)) or (spec is not None and spec.kind == "image")


def run_cli(flags, *, experiment: str):
  """What every experiment's absl main does: run, and turn the expected failures into clear exits."""
  config = flags.config
  workdir = flags.workdir or os.path.join("workdirs", f"{experiment.split('.')[-1]}_{config.preset}")
  try:
    check_paths(config, workdir)        # before TensorFlow and JAX start
    check_early(config, workdir)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)
  verbose = flags.is_parsed() and "verbosity" in flags and flags["verbosity"].present
  if verbose:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")   # -v: TensorFlow's INFO notices too, unless the user chose
  if _uses_tensorflow(config):
    runtime.quiet_startup(verbose)     # TensorFlow's import notices; -v keeps them
  from absl import logging as absl_logging
  from jaxgen.data.tfds import DatasetUnavailableError
  from jaxgen.train.frozen import FrozenPartError
  from jaxgen.train.checkpoint import CheckpointMismatch, CheckpointUnavailable, CheckpointWriteError
  from jaxgen.train.lock import WorkdirLocked
  from jaxgen.train.trainer import NonFiniteLossError, TrainingInterrupted
  if not verbose:
    absl_logging.set_verbosity(absl_logging.WARNING)   # Orbax logs every save at INFO; -v=0 brings it back
  try:
    run(config, workdir, experiment=experiment, multihost=flags.multihost,
        coordinator_address=flags.coordinator_address, num_processes=flags.num_processes,
        process_id=flags.process_id, allow_config_change=flags.allow_config_change,
        heartbeat_timeout=flags.heartbeat_timeout, allow_restart=flags.allow_restart)
  except (ConfigError, DatasetUnavailableError, WorkdirLocked, CheckpointMismatch, CheckpointUnavailable,
          FrozenPartError) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)
  except NonFiniteLossError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(3)
  except CheckpointWriteError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
  except OSError as e:
    import errno
    if e.errno not in (errno.ENOSPC, errno.EDQUOT):
      raise
    from jaxgen.train.checkpoint import free_bytes
    print(f"error: {e.strerror} writing {e.filename or workdir} ({free_bytes(workdir) / 2**20:.2f} MiB free "
          f"there); free space and rerun the same command to resume", file=sys.stderr, flush=True)
    sys.exit(1)
  except TrainingInterrupted as e:
    # The checkpoint is saved and the lock released: while Python and JAX shut down (their exit handlers), a
    # further Ctrl-C is ignored (not a KeyboardInterrupt traceback, nor, once Python's finalisation has restored
    # the default handlers, a death by SIGINT: SIG_IGN is the one disposition it keeps) and a SIGTERM ends the
    # process at once, should the shutdown hang.
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(128 + signum))  # pylint: disable=protected-access
    print(str(e), file=sys.stderr, flush=True)
    sys.exit(128 + e.signum)
  except Exception as e:  # pylint: disable=broad-except
    import jax
    if jax.process_count() > 1 and isinstance(e, jax.errors.JaxRuntimeError):
      print(f"error: a collective of this {jax.process_count()}-process job failed on process "
            f"{jax.process_index()} (another process probably died or was killed): {str(e).splitlines()[0]}; "
            f"stopping (the coordinator declares a silent process dead after --heartbeat_timeout="
            f"{flags.heartbeat_timeout} s and stops the rest)", file=sys.stderr, flush=True)
      # Exit now: Python's normal exit runs jax.distributed's shutdown, which waits for the dead peer until the
      # heartbeat timeout again and then aborts (rc 134, a C++ check-failure trace).
      from jaxgen.train.lock import release_all
      release_all()
      sys.stdout.flush()
      os._exit(1)
    raise


# -- rebuilding a finished run ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
  """A finished (or interrupted) run rebuilt from its workdir."""
  workdir: str
  experiment: str
  preset: Optional[str]
  config: Any            # ml_collections.ConfigDict
  family: Any
  state: Any             # jaxgen.train.state.TrainState
  step: int
  frozen: Any = None     # the family's frozen parts, restored from their source runs (jaxgen.train.frozen)

  @property
  def params(self):
    """The EMA params, with the frozen parts merged in: what samples and evaluations use."""
    from jaxgen.train.frozen import merge
    return merge(self.state.ema_params, self.frozen)


def _tuples(x):
  if isinstance(x, dict):
    return {k: _tuples(v) for k, v in x.items()}
  if isinstance(x, list):
    return tuple(_tuples(v) for v in x)
  return x


def read_run_config(workdir: str):
  """(the config.json record, the run's config as a ConfigDict)."""
  import ml_collections
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} holds no run: {path} does not exist (is it the --workdir of a training "
                            "run?)")
  from jaxgen.train.provenance import read_record
  record = read_record(workdir)
  return record, ml_collections.ConfigDict(_tuples(record["config"]))


_MISSING = "<not set>"


def _get(config, dotted: str, default: Any = None):
  """config's value at `dotted`; `default` (when given) for a field the config lacks."""
  node = config
  for part in dotted.split("."):
    if default is not None and (not hasattr(node, "keys") or part not in node):
      return default
    node = node[part]
  return node


def apply_overrides(config, overrides: Optional[Dict[str, Any]]):
  for dotted, value in (overrides or {}).items():
    *parents, leaf = dotted.split(".")
    node = config
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def load_run(workdir: str, *, step: Optional[int] = None, overrides: Optional[Dict[str, Any]] = None,
             expect: Optional[Dict[str, Any]] = None) -> Run:
  """Rebuild the family of the run in `workdir` and restore its checkpoint (`step`, default the latest).

  overrides: {'dotted.field': value} applied to the run's config first (e.g. sampling settings);
  expect: {'dotted.field': value} that the run's config must hold (a frozen part taken from another run must
  be the one the new family was configured for); a mismatch raises ValueError naming the fields.
  """
  from jaxgen.data import example_batch
  from jaxgen.train import parallel, trainer
  from jaxgen.train.checkpoint import Checkpointer
  record, config = read_run_config(workdir)
  wrong = {k: (_get(config, k, _MISSING), v) for k, v in (expect or {}).items() if _get(config, k, _MISSING) != v}
  if wrong:
    raise ValueError(f"the run in {workdir} does not match: " +
                     ", ".join(f"{k} is {have!r}, expected {want!r}" for k, (have, want) in wrong.items()))
  apply_overrides(config, overrides)
  runtime.configure_jax(config)
  registry.validate_config(config)
  family = registry.resolve(registry.family_entry(config.family).build)(config)
  mesh = parallel.make_mesh(config)
  from jaxgen.train.checkpoint import CheckpointUnavailable
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
  try:
    if ckpt.latest_step() is None:
      raise FileNotFoundError(f"{workdir} has no checkpoint in {ckpt.directory}")
    frozen = trainer.load_frozen_parts(family, workdir, mesh, has_checkpoint=True, write=False)
    abstract = trainer.abstract_train_state(family, config, mesh, example_batch(config))
    if step is None:                 # past a damaged latest checkpoint, as training does (nothing is moved)
      warn = lambda m: print(m, file=sys.stderr, flush=True)   # noqa: E731  (stdout may carry a command's JSON)
      latest = ckpt.latest_step()
      try:
        step, state = ckpt.restore_latest(abstract, move_aside=False, log=warn)
      except CheckpointUnavailable as e:
        raise FileNotFoundError(str(e)) from e
      if step != latest:
        warn(f"note: using checkpoint {step} of {workdir} (the latest, {latest}, is damaged)")
    else:
      try:
        state = ckpt.restore(abstract, step)
      except FileNotFoundError:
        raise
      except Exception as e:  # pylint: disable=broad-except  (TensorStore's dump of a damaged checkpoint)
        diffs = ckpt.mismatch(abstract, step) if step in ckpt.all_steps() else None
        if diffs:
          from jaxgen.train.checkpoint import describe_mismatch
          raise ValueError(describe_mismatch(ckpt.directory, step, diffs)) from e
        raise ValueError(f"checkpoint {step} in {ckpt.directory} is damaged and cannot be restored "
                         f"({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}); "
                         f"leave out the step to use the newest intact one") from e
  finally:
    ckpt.close()
  return Run(workdir=os.path.abspath(workdir), experiment=record.get("experiment", ""), preset=record.get("preset"),
             config=config, family=family, state=state, step=int(step), frozen=frozen)

