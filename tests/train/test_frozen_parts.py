"""A frozen part restored from another run (jaxgen.train.frozen): a DDPM with an MLP denoiser on the latents of a
frozen VAE run (diffusion on any tensor through the codec). The VAE is restored outside the compiled init,
never trained (bit-identical after training), not written into the new run's checkpoints (they hold only the
denoiser: the bytes saved are measured), recorded with a fingerprint in frozen.json, merged back by load_run,
and a source whose parameters changed is refused in one line on resume."""
import json
import os

import jax
import numpy as np
import pytest

from experiments import vae_digits
from jaxgen.train import run as run_mod
from jaxgen.train.frozen import FrozenPartChanged


def _du(path):
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("vae"))
  c = vae_digits.get_config("smoke")
  c.update(evals=(), tensorboard=False, sample_every=0)
  run_mod.run(c, workdir, experiment="experiments.vae_digits")
  return workdir


def _latent_ddpm(vae_workdir, steps):
  from experiments.ddpm_toy2d import get_config
  c = get_config("smoke")
  c.data.name = "digits"
  c.codec = dict(kind="frozen_autoencoder", workdir=vae_workdir, scale=1.0)
  c.update(num_train_steps=steps, evals=(), tensorboard=False, sample_every=steps, num_samples=4)
  c.checkpoint_every = 2
  return c


def test_a_ddpm_on_a_frozen_vae_runs_latents(vae_run, tmp_path):
  workdir = str(tmp_path / "ldm")
  state = run_mod.run(_latent_ddpm(vae_run, 4), workdir, experiment="experiments.ddpm_toy2d")
  source = run_mod.load_run(vae_run)
  record = json.load(open(os.path.join(workdir, "frozen.json")))["autoencoder"]
  assert record["workdir"] == os.path.abspath(vae_run) and record["step"] == source.step
  # the trained params hold only the denoiser: no optimizer state, no EMA, no checkpoint bytes for the VAE
  assert "autoencoder" not in state.params and "autoencoder" not in state.ema_params
  ckpt = os.path.join(workdir, "checkpoints", "4")
  vae_bytes = record["bytes"]
  assert vae_bytes == sum(np.asarray(x).nbytes for x in jax.tree.leaves(source.params))
  assert _du(ckpt) < _du(os.path.join(vae_run, "checkpoints", str(source.step)))
  print(f"checkpoint {_du(ckpt)} bytes; the frozen VAE's {vae_bytes} bytes of parameters are not in it")
  # load_run merges the part back, bit-identical to the source's EMA params
  rebuilt = run_mod.load_run(workdir)
  for a, b in zip(jax.tree.leaves(rebuilt.params["autoencoder"]), jax.tree.leaves(source.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  samples = np.asarray(rebuilt.family.sample(rebuilt.params, jax.random.PRNGKey(0), 3))
  assert samples.shape == (3, 8, 8, 1) and samples.min() >= -1 and samples.max() <= 1
  assert os.path.exists(os.path.join(workdir, "samples", "step_4.png"))

  # the source trains on: its latest parameters differ, so resuming the latent run is refused in one line
  from experiments import vae_digits
  c = vae_digits.get_config("smoke")
  c.update(evals=(), tensorboard=False, sample_every=0, num_train_steps=8)
  run_mod.run(c, vae_run, experiment="experiments.vae_digits")
  with pytest.raises(FrozenPartChanged, match=r"the frozen part 'autoencoder' from .* is not the one the "
                                                r"checkpoints in .* were trained with \(fingerprint"):
    run_mod.run(_latent_ddpm(vae_run, 6), workdir, experiment="experiments.ddpm_toy2d")
