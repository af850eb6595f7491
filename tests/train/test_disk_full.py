"""A checkpoint that cannot be written (a full disk: a small tmpfs) stops training at that save with one line
naming the path and the free space; the previous checkpoint stays restorable."""
import os
import subprocess

import jax
import numpy as np
import pytest

from experiments.flow_toy2d import get_config
from jaxgen.data import train_data_fn
from jaxgen.registry import FAMILIES, resolve
from jaxgen.train import parallel, trainer
from jaxgen.train.checkpoint import Checkpointer, CheckpointWriteError


@pytest.fixture
def small_disk(tmp_path):
  mount = tmp_path / "disk"
  mount.mkdir()
  proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=360k", "tmpfs", str(mount)], capture_output=True,
                        text=True)
  if proc.returncode != 0:
    pytest.skip(f"cannot mount a small tmpfs here (needs root): {proc.stderr.strip()}")
  try:
    yield str(mount)
  finally:
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_stops_training_at_that_save(small_disk, tmp_path):
  config = get_config("smoke")
  config.update(num_train_steps=40, log_every=1, checkpoint_every=2, keep_checkpoints=5, sample_every=0, evals=(),
                tensorboard=False)
  family = resolve(FAMILIES[config.family].build)(config)
  workdir = os.path.join(small_disk, "run")
  with pytest.raises(CheckpointWriteError) as info:
    trainer.train(family, config, workdir, train_data_fn(config))
  message = str(info.value)
  failed = int(message.split("cannot write checkpoint ")[1].split(" ")[0])
  assert "\n" not in message and f"to {workdir}/checkpoints" in message and "MiB free there" in message, message
  assert failed < config.num_train_steps and "rerun the same command to resume" in message, message
  logged = [int(l.split('"step": ')[1].split(",")[0]) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert max(logged) == failed, (failed, logged)                  # stopped at that save, not steps later
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
  try:
    previous = max(s for s in ckpt.all_steps() if s < failed)
    abstract = trainer.abstract_train_state(family, config, parallel.make_mesh(config), next(train_data_fn(config)(0)))
    step, state = ckpt.restore_latest(abstract)
  finally:
    ckpt.close()
  assert step == previous and int(state.step) == previous
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
