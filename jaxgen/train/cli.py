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
  flags.DEFINE_bool("allow_config_change", False, "resume a workdir with config fields that differ from the run's "
                    "own (refused by default unless every changed field is safe to change: docs/sweeps.md)")
  flags.DEFINE_bool("allow_restart", False, "train from step 0 in a workdir whose every checkpoint was moved to "
                    "checkpoints/damaged/ (refused by default: it would overwrite the run's metrics)")
  flags.DEFINE_bool("multihost", False, "join a multi-process job with jax.distributed.initialize()")
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multihost without auto-detection)")
  flags.DEFINE_integer("num_processes", None, "number of processes (with --coordinator_address)")
  flags.DEFINE_integer("process_id", None, "this process's index (with --coordinator_address)")
  flags.DEFINE_integer("heartbeat_timeout", 100, "multihost: seconds without a heartbeat after which a process "
                       "counts as dead and the others stop with an error (JAX's default: 100)")
  return flags.FLAGS


def fail(message: str):
  """One line on stderr starting with 'error:', exit code 2 (a bad command line, nothing started)."""
  import sys
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


def _config_fields(config, prefix=""):
  out = []
  for k, v in config.items():
    name = f"{prefix}{k}"
    if hasattr(v, "items") and not isinstance(v, (str, bytes)):
      out += _config_fields(v, name + ".")
    else:
      out.append(name)
  return out


def _default_config(config_file: str, argv):
  """The config the command line starts from (its --config file and preset), for naming the existing fields."""
  import importlib.util
  spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), config_file)
  path, _, preset = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_jaxgen_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(preset) if preset else module.get_config()


def command_line_error(exc: BaseException, config_file: str, argv) -> str:
  """A one-line explanation of a flag-parsing failure: unknown preset, unknown field (with the closest existing
  fields), a value of the wrong type."""
  import difflib
  import re
  text = str(exc)
  m = re.search(r"ValueError: (unknown preset [^\n]*)", text) or re.match(r"(unknown preset [^\n]*)", text)
  if m:
    return m.group(1)
  m = re.search(r"flag --(config\.[^=]+)=([^:]*): (.*)", text)
  if m:
    return f"--{m.group(1)}={m.group(2)}: {m.group(3).splitlines()[0]} (wrong type for this field?)"
  if isinstance(exc, (AttributeError, KeyError)):
    bad = [a[len("--config."):].split("=", 1)[0] for a in argv if a.startswith("--config.")]
    try:
      fields = _config_fields(_default_config(config_file, argv))
    except Exception:  # pylint: disable=broad-except
      fields = []
    unknown = [b for b in bad if b not in fields] or bad
    close = difflib.get_close_matches(unknown[0], fields, n=3, cutoff=0.5) if unknown else []
    hint = f"; closest: {', '.join(close)}" if close else (f"; fields are e.g. {', '.join(fields[:6])}" if fields else "")
    return f"unknown config field {unknown[0] if unknown else text!r}{hint}"
  return text.splitlines()[0] if text else type(exc).__name__


def config_file_missing(argv) -> str:
  """The error for a --config=<file>[:preset] whose file does not exist ('' when it does or is not given)."""
  for i, a in enumerate(argv):
    spec = a.split("=", 1)[1] if a.startswith("--config=") else (
        argv[i + 1] if a == "--config" and i + 1 < len(argv) else None)
    if spec is not None:
      path = spec.partition(":")[0]
      if not os.path.isfile(path):
        return f"--config={spec}: the config file {path} does not exist (e.g. experiments/ddpm_cifar.py:smoke)"
  return ""


def main(config_file: str, argv=None):
  """Parse the flags and run the experiment of `config_file`."""
  import sys
  from absl import app
  experiment = experiment_name(config_file)
  argv = list(sys.argv if argv is None else argv)
  try:
    flag_values = define_flags(config_file)     # ml_collections may apply overrides of the default file here
  except Exception as e:                        # pylint: disable=broad-except
    fail(command_line_error(e, config_file, argv))

  def parse(args):
    missing = config_file_missing(args)
    if missing:
      fail(missing)
    try:
      rest = flag_values(args)
      flag_values.config            # apply the overrides now, inside this try
      return rest
    except Exception as e:          # pylint: disable=broad-except
      fail(command_line_error(e, config_file, args))

  def _main(_):
    from jaxgen.train.run import run_cli
    run_cli(flag_values, experiment=experiment)

  app.run(_main, argv=argv, flags_parser=parse)
