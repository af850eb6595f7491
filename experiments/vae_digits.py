r"""VAE (Kingma & Welling 2013) on the bundled 8x8 digits, reporting held-out ELBO and IWAE bits/dim.

COMMAND (the paper's MLP recipe: one hidden layer of 500 units, 20 latents, Adam, batch 100):
  python -m experiments.vae_digits --workdir=workdirs/vae_digits
Quick (a few minutes on 2 CPU cores):
  python -m experiments.vae_digits --config=experiments/vae_digits.py:quick --workdir=workdirs/vae_digits_quick
CI check:
  python -m experiments.vae_digits --config=experiments/vae_digits.py:smoke --workdir=/tmp/vae_smoke
Options: --config.model.likelihood=bernoulli|gaussian|logistic --config.model.kind=mlp|conv --config.model.beta=..

EXPECTED
  metrics.jsonl carries test/elbo_bits_per_dim and test/iwae<k>_bits_per_dim (8-bit bits/dim of the 300 held-out digits under
  the discretised logistic decoder, EMA params); IWAE < ELBO. workdir/figures/ holds reconstructions.png
  (data and reconstruction rows alternating), samples.png and interpolations.png; samples/fid, precision, ...
  grade 1000 prior samples in the digits feature space. See docs/vae_gan.md for the figures measured here.
"""
from __future__ import annotations

from jaxgen.train.presets import base_config, cadence, smoke


def get_config(preset: str = "paper"):
  c = base_config("vae", preset or "paper")
  c.model = dict(kind="mlp", hidden=(500,), channels=(32, 64), latent_dim=20, likelihood="logistic", beta=1.0)
  c.eval.update(num_iwae_samples=5000, iwae_chunk=250, batch_size=100)
  c.evals = ("vae_heldout", "vae_figures", "sample_metrics")
  c.optim.update(learning_rate=1e-3, ema_decay=0.999)
  c.batch_size = 100
  cadence(c, steps=50_000, every=5000, log_every=500, eval_every=10_000)
  if c.preset == "quick":
    c.model.update(kind="conv", channels=(32, 64), latent_dim=16)
    c.eval.update(num_iwae_samples=1000, iwae_chunk=250)
    cadence(c, steps=4000, every=1000, log_every=200, sample_every=2000, eval_every=2000)
  elif c.preset == "smoke":
    c.model.update(hidden=(32,), latent_dim=4)
    c.eval.update(num_iwae_samples=8, iwae_chunk=4)
    smoke(c)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
