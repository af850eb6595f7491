"""Config defaults every experiment starts from, and the preset cadences stated once.

An experiment's get_config(preset) starts from `base_config(family, preset)` (the trainer's fields with their
defaults), sets what its family and recipe need, and for the offline presets calls `cadence` / `smoke`:
  paper  the published recipe (CIFAR-10 / long runs)
  quick  a real result in minutes on a CPU, offline data        cadence(c, steps=..., every=...)
  smoke  a few steps on a tiny network, for tests and CI          smoke(c)
(in the spirit of big_vision's `runlocal`): so an experiment file says only what differs for its family.
"""
from __future__ import annotations

PRESETS = ("paper", "quick", "smoke")
SMOKE_STEPS = 6


def base_config(family: str, preset: str, presets=PRESETS):
  """The fields the trainer reads, with the defaults every experiment starts from (then changes a few)."""
  import ml_collections
  if preset not in presets:
    raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(presets)}")
  c = ml_collections.ConfigDict()
  c.family = family
  c.preset = preset
  c.seed = 0
  # data_dir: a TFDS data directory (None: TFDS's default, ~/tensorflow_datasets). A typed placeholder, so that
  # --config.data.data_dir=... can override it.
  # pipeline: 'memory' (the split cached in memory; small data) or 'streaming' (random access into ArrayRecord
  # files through Grain, global shuffle; jaxgen.data.streaming). workers: the streaming pipeline's reading
  # processes (0: threads in the training process; the batches are the same for any number).
  c.data = dict(name="digits", data_dir=ml_collections.config_dict.placeholder(str), random_flip=False,
                download=True, pipeline="memory", workers=0)
  # The shared optimizer settings (jaxgen.train.optim); optim.groups.<group> overrides them per parameter group.
  c.optim = dict(learning_rate=1e-3, warmup_steps=0, decay_steps=0, grad_clip=0.0, b1=0.9, b2=0.999, eps=1e-8,
                 weight_decay=0.0, ema_decay=0.999, groups={})
  c.batch_size = 64
  c.num_train_steps = 1000
  c.log_every = 100
  c.checkpoint_every = 1000
  c.keep_checkpoints = 2
  c.sample_every = 1000
  c.num_samples = 100
  c.eval_every = 0            # 0: evaluate only at the end
  c.evals = ()                # names in jaxgen.registry.EVALS
  # eval.fid_samples: samples per 'sample_metrics' evaluation; feature_net_steps: 0 = the offline feature
  # network's full training; inception_weights: the converted FID Inception (None: $JAXGEN_INCEPTION_WEIGHTS or
  # ~/.cache/jaxgen/...).
  c.eval = dict(batch_size=500, fid_samples=1000, feature_net_steps=0,
                inception_weights=ml_collections.config_dict.placeholder(str))
  # How the train state lies on the devices (jaxgen.train.parallel): 'replicated' or 'fsdp' (tensors of at
  # least min_shard_size elements split over the devices); model_axis > 1: a 2-D ('data', 'model') mesh.
  c.parallel = dict(strategy="replicated", model_axis=1, min_shard_size=2 ** 14)
  c.tensorboard = True
  c.prng_impl = "threefry2x32"
  c.xla_cpu_fast_conv = True
  return c


def cadence(c, *, steps: int, every: int, log_every: int = 100, **overrides):
  """num_train_steps = steps; checkpoints, sample grids and evaluations every `every` steps (and at the end),
  progress every `log_every`; `overrides` (e.g. sample_every=...) win."""
  c.update(dict(num_train_steps=steps, log_every=log_every, checkpoint_every=every, sample_every=every,
                eval_every=every), **overrides)
  return c


def smoke(c, *, steps: int = SMOKE_STEPS, batch_size: int = 16, **overrides):
  """The CI cadence: `steps` steps of `batch_size`, logs every 2 steps, a checkpoint half-way and at the end,
  samples and evaluations at the end, 16 samples (also for sample metrics, in a feature space trained for 100
  steps), EMA 0.9, at most 2 warm-up steps."""
  c.update(dict(batch_size=batch_size, num_train_steps=steps, log_every=2, checkpoint_every=steps // 2,
                keep_checkpoints=2, sample_every=steps, num_samples=16, eval_every=steps), **overrides)
  c.optim.update(warmup_steps=min(c.optim.warmup_steps, 2), ema_decay=0.9)
  c.eval.update(fid_samples=16, feature_net_steps=100)     # a quickly trained feature network of its own
  return c
