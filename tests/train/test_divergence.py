"""After a divergence the checkpoint named as last good is good (jaxgen.train.health): a finite checkpoint
whose parameters are already ruined is moved to checkpoints/diverged/, and the advice printed is true:
rerunning with a lower learning rate (allowed after a divergence) resumes from the good one and trains."""
import json
import os

import numpy as np
import pytest

from experiments.flow_toy2d import get_config
from jaxgen.train import health, run, trainer


def _config(lr, steps, every):
  config = get_config("smoke")
  config.update(num_train_steps=steps, log_every=1, checkpoint_every=every, keep_checkpoints=3, sample_every=0,
                evals=(), tensorboard=False)
  config.optim.update(learning_rate=lr, warmup_steps=0)
  return config


def test_first_spike_and_last_good():
  losses = [(1, 1.0), (2, 1.1), (3, 0.9), (4, 1.2), (5, 40.0), (6, float("nan"))]
  assert health.first_spike(losses) == (5, 40.0, pytest.approx(1.05))
  assert health.first_spike([(1, -3.0), (2, -3.5), (3, -2.9)]) is None      # negative NLLs are not spikes
  h = health.Health("/nonexistent")
  h.enabled = False
  h.losses = losses
  for step, norm in ((None, 1.0), (2, 1.1), (3, 2.0), (4, 3.0)):
    h.note(step, norm)
  assert h.last_good([2, 3, 4])[0] == 3                   # the loss of step 5 was computed from checkpoint 4
  h.losses = losses[:4]
  h.note(4, 1e6)
  good, why = h.last_good([2, 3, 4])
  assert good == 3 and "parameter norm is 1e+06" in why


def test_a_ruined_checkpoint_is_not_the_last_good_one(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  run.run(_config(1e-3, 4, 2), workdir, experiment="experiments.flow_toy2d")
  with pytest.raises(trainer.NonFiniteLossError) as info:   # step 5's update ruins the parameters, step 6 shows it
    run.run(_config(30.0, 12, 1), workdir, experiment="experiments.flow_toy2d", allow_config_change=True)
  message = str(info.value)
  assert "last good checkpoint" in message and "is step 4" in message, message
  assert "rose far above its recent average at step 6" in message and "[5]" in message, message
  ckpts = os.path.join(workdir, "checkpoints")
  assert sorted(os.listdir(ckpts)) == ["2", "4", "diverged"]
  assert os.listdir(os.path.join(ckpts, "diverged"))[0].startswith("5-")           # kept, not deleted
  capsys.readouterr()
  state = run.run(_config(1e-3, 12, 4), workdir, experiment="experiments.flow_toy2d")   # no --allow_config_change
  out = capsys.readouterr().out
  assert "resumed from checkpoint at step 4" in out and "after a divergence" in out, out
  assert int(state.step) == 12 and all(np.isfinite(np.asarray(x)).all() for x in
                                       __import__("jax").tree.leaves(state.params))
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl")) if "train/loss" in l]
  assert [r["step"] for r in rows] == list(range(1, 13)) and rows[-1]["train/loss"] < 2 * rows[0]["train/loss"]
  assert not os.path.exists(os.path.join(workdir, trainer.DIVERGED_FILE))
