"""The command line every experiment shares: `--config=<file>:<preset>`, `--config.<field>=<value>`, `--workdir`
and the multi-host flags, plus the trainer's config fields with their defaults."""
from __future__ import annotations

import os
from typing import Callable, Optional

PRESETS = ("paper", "quick", "smoke")


def base_config(preset: str, presets=PRESETS):
  """The fields the trainer reads, with defaults every experiment starts from (then changes a few)."""
  import ml_collections
  if preset not in presets:
    raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(presets)}")
  c = ml_collections.ConfigDict()
  c.preset = preset
  c.seed = 0
  # data_dir: a TFDS data directory (None: TFDS's default, ~/tensorflow_datasets). A typed placeholder, so that
  # --config.data.data_dir=... can override it.
  c.data = dict(name="digits", data_dir=ml_collections.config_dict.placeholder(str), random_flip=False,
                download=True)
  c.optim = dict(learning_rate=1e-3, warmup_steps=0, grad_clip=0.0, b1=0.9, b2=0.999, eps=1e-8, ema_decay=0.999)
  c.batch_size = 64
  c.num_train_steps = 1000
  c.log_every = 100
  c.checkpoint_every = 1000
  c.keep_checkpoints = 2
  c.sample_every = 1000
  c.num_samples = 100
  c.eval_every = 0            # 0: evaluate only at the end
  c.tensorboard = True
  c.prng_impl = "threefry2x32"
  c.xla_cpu_fast_conv = True
  return c


def experiment_main(config_file: str, name: str, *, validate: Callable, build_family: Callable,
                    data_fn_factory: Optional[Callable] = None, eval_fn_factory: Optional[Callable] = None,
                    argv=None):
  """Parse the flags and run. eval_fn_factory(config, family, workdir) -> eval_fn or None;
  data_fn_factory(config) -> (start_step -> iterator of process-local batches); default: the TFDS pipeline."""
  from absl import app, flags
  from ml_collections import config_flags

  config_flags.DEFINE_config_file("config", os.path.abspath(config_file), "experiment config file[:preset]",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, f"run directory (default: workdirs/{name}_<preset>)")
  flags.DEFINE_bool("multihost", False, "join a multi-process job with jax.distributed.initialize()")
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multihost without auto-detection)")
  flags.DEFINE_integer("num_processes", None, "number of processes (with --coordinator_address)")
  flags.DEFINE_integer("process_id", None, "this process's index (with --coordinator_address)")

  def _main(_):
    from jaxgen.train.run import run_main
    cfg = flags.FLAGS.config
    workdir = flags.FLAGS.workdir or os.path.join("workdirs", f"{name}_{cfg.preset}")
    factory = (lambda c, fam: eval_fn_factory(c, fam, workdir)) if eval_fn_factory else None
    run_main(cfg, workdir, validate=validate, build_family=build_family, flags=flags.FLAGS,
             data_fn_factory=data_fn_factory, eval_fn_factory=factory)

  app.run(_main, argv=argv)
