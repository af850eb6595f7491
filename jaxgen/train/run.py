"""Run an experiment: the steps every `experiments/*.py` main shares, in the order they must happen.

1. XLA flags and PRNG choice (before JAX starts), 2. join a multi-host job if asked, 3. validate the config
(names the bad value, nothing compiled yet), 4. prepare the data (fails within seconds if it cannot),
5. train with the shared trainer.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Optional

from jaxgen.train import runtime


class ConfigError(ValueError):
  """The config was rejected before anything compiled."""


def run_experiment(config, workdir: str, *, validate: Callable, build_family: Callable,
                   data_fn_factory: Optional[Callable] = None, eval_fn_factory: Optional[Callable] = None,
                   multihost: bool = False,
                   coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
                   process_id: Optional[int] = None):
  runtime.configure_jax(config)
  if multihost:
    from jaxgen.train.parallel import initialize_distributed
    initialize_distributed(coordinator_address, num_processes, process_id)
  import jax
  from jaxgen.train import trainer
  try:
    validate(config)
    trainer.validate_train_config(config, num_devices=jax.device_count(), num_processes=jax.process_count())
  except ValueError as e:
    raise ConfigError(f"bad config: {e}") from e
  data_fn = (data_fn_factory or tfds_data_fn)(config)
  family = build_family(config)
  config_dict = {"config": config.to_dict(), "runtime": runtime.runtime_info(), "workdir": os.path.abspath(workdir)}
  eval_fn = eval_fn_factory(config, family) if eval_fn_factory else None
  return trainer.train(family, config, workdir, data_fn, config_dict=config_dict, eval_fn=eval_fn)


def tfds_data_fn(config):
  """Prepare the TFDS data set now (fast failure) and return start_step -> iterator of local batches."""
  from jaxgen.data import tfds
  tfds.prepare(config.data.name, config.data.get("data_dir"), config.data.get("download", True))
  return lambda start_step: tfds.make_train_iterator(config.data, global_batch_size=config.batch_size,
                                                     seed=config.seed, start_step=start_step)


def run_main(config, workdir: str, *, validate: Callable, build_family: Callable, flags, data_fn_factory=None,
             eval_fn_factory=None):
  """What every experiment's absl main does: run, and turn the expected failures into clear exits."""
  from absl import logging as absl_logging
  from jaxgen.data.tfds import DatasetUnavailableError
  from jaxgen.train.trainer import NonFiniteLossError, TrainingInterrupted
  if not flags.is_parsed() or "verbosity" not in flags or not flags["verbosity"].present:
    absl_logging.set_verbosity(absl_logging.WARNING)   # Orbax logs every save at INFO; -v=0 brings it back
  try:
    run_experiment(config, workdir, validate=validate, build_family=build_family, data_fn_factory=data_fn_factory,
                   eval_fn_factory=eval_fn_factory, multihost=flags.multihost, coordinator_address=flags.coordinator_address,
                   num_processes=flags.num_processes, process_id=flags.process_id)
  except (ConfigError, DatasetUnavailableError) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)
  except NonFiniteLossError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(3)
  except TrainingInterrupted as e:
    print(str(e), file=sys.stderr, flush=True)
    sys.exit(128 + e.signum)
