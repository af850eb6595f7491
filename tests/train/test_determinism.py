"""On the CPU the same command run twice gives bitwise-identical parameters, EMA and optimizer state (the
DDPM smoke U-Net with dropout: PRNG streams, data order and threaded convolutions all take part). The two
runs go at the same time, so they also share the machine as a sweep's points do. docs/sweeps.md says what is
and is not bitwise reproducible elsewhere."""
import os
import subprocess
import sys

import jax
import numpy as np

from jaxgen.train.run import load_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGS = ["--config.num_train_steps=12", "--config.checkpoint_every=6", "--config.log_every=3",
         "--config.sample_every=0", "--config.eval_every=0", "--config.evals=()", "--config.tensorboard=False"]


def test_the_same_command_twice_gives_bitwise_identical_parameters(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  procs = [subprocess.Popen([sys.executable, "-m", "experiments.ddpm_cifar", "--config=experiments/ddpm_cifar.py:smoke",
                             f"--workdir={tmp_path / name}", *FLAGS], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for name in ("a", "b")]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  assert all(p.returncode == 0 for p in procs), outs
  a, b = (load_run(str(tmp_path / name)) for name in ("a", "b"))
  assert a.step == b.step == 12
  leaves_a = jax.tree.leaves((a.state.params, a.state.ema_params, a.state.opt_state, a.state.rng))
  leaves_b = jax.tree.leaves((b.state.params, b.state.ema_params, b.state.opt_state, b.state.rng))
  assert len(leaves_a) == len(leaves_b) > 10
  for x, y in zip(leaves_a, leaves_b):
    x, y = np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x), \
        np.asarray(jax.random.key_data(y) if jax.dtypes.issubdtype(y.dtype, jax.dtypes.prng_key) else y)
    assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
  # The runs did learn (the comparison is not of two untouched initialisations).
  init = load_run(str(tmp_path / "a"), step=6)
  assert any(not np.array_equal(np.asarray(p), np.asarray(q))
             for p, q in zip(jax.tree.leaves(init.state.params), jax.tree.leaves(a.state.params)))
  # The loss curves are the same too.
  rows = [open(tmp_path / name / "metrics.jsonl").read().splitlines() for name in ("a", "b")]
  strip = lambda lines: [l.split(', "perf/')[0] for l in lines]          # wall-clock rates differ, of course
  assert strip(rows[0]) == strip(rows[1])
