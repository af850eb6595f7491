"""The command line every experiment shares: `--config=<file>:<preset>`, `--config.<field>=<value>`, `--workdir`
and the multi-host flags. Each experiment file is a `get_config(preset)` and

    if __name__ == "__main__":
      from jaxgen.train import cli
      cli.main(__file__)

`main` parses the flags, then hands the config to jaxgen.train.run.run_cli, which trains the config's family
(or runs its study) with the shared trainer.
"""
from __future__ import annotations

import os


def experiment_name(config_file: str) -> str:
  """'experiments/ddpm_cifar.py' -> 'experiments.ddpm_cifar' (the module a workdir's config.json names)."""
  path = os.path.abspath(config_file)
  stem = os.path.splitext(os.path.basename(path))[0]
  parent = os.path.dirname(path)
  if os.path.exists(os.path.join(parent, "__init__.py")):
    return f"{os.path.basename(parent)}.{stem}"
  return stem


def define_flags(config_file: str):
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", os.path.abspath(config_file), "experiment config file[:preset]",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "run directory (default: workdirs/<experiment>_<preset>)")
  flags.DEFINE_bool("multihost", False, "join a multi-process job with jax.distributed.initialize()")
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multihost without auto-detection)")
  flags.DEFINE_integer("num_processes", None, "number of processes (with --coordinator_address)")
  flags.DEFINE_integer("process_id", None, "this process's index (with --coordinator_address)")
  return flags.FLAGS


def main(config_file: str, argv=None):
  """Parse the flags and run the experiment of `config_file`."""
  from absl import app
  experiment = experiment_name(config_file)
  flag_values = define_flags(config_file)

  def _main(_):
    from jaxgen.train.run import run_cli
    run_cli(flag_values, experiment=experiment)

  app.run(_main, argv=argv)
