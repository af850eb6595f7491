r"""VAE (Kingma & Welling 2013) on the bundled 8x8 digits, reporting held-out ELBO and IWAE bits/dim.

COMMAND (the paper's MLP recipe: one hidden layer of 500 units, 20 latents, Adam, batch 100):
  python -m experiments.vae_digits --workdir=workdirs/vae_digits
Quick (a few minutes on 2 CPU cores):
  python -m experiments.vae_digits --config=experiments/vae_digits.py:quick --workdir=workdirs/vae_digits_quick
CI check:
  python -m experiments.vae_digits --config=experiments/vae_digits.py:smoke --workdir=/tmp/vae_smoke
Options: --config.model.likelihood=bernoulli|gaussian|logistic --config.model.kind=mlp|conv --config.model.beta=..

EXPECTED
  metrics.jsonl carries test_elbo_bpd and test_iwae<k>_bpd (8-bit bits/dim of the 300 held-out digits under
  the discretised logistic decoder, EMA params); IWAE < ELBO. workdir/figures/ holds reconstructions.png
  (data and reconstruction rows alternating), samples.png and interpolations.png. See docs/vae_gan.md for the
  figures measured here.
"""
from __future__ import annotations

from jaxgen.train.cli import base_config, experiment_main


def get_config(preset: str = "paper"):
  c = base_config(preset or "paper")
  c.model = dict(kind="mlp", hidden=(500,), channels=(32, 64), latent_dim=20, likelihood="logistic", beta=1.0)
  c.eval = dict(num_iwae_samples=5000, iwae_chunk=250, batch_size=100)
  c.optim.update(learning_rate=1e-3, ema_decay=0.999)
  c.batch_size = 100
  c.num_train_steps = 50_000
  c.log_every = 500
  c.checkpoint_every = 5000
  c.sample_every = 5000
  c.eval_every = 10_000
  if c.preset == "quick":
    c.model.update(kind="conv", channels=(32, 64), latent_dim=16)
    c.eval.update(num_iwae_samples=1000, iwae_chunk=250)
    c.num_train_steps = 4000
    c.log_every = 200
    c.checkpoint_every = 1000
    c.sample_every = 2000
    c.eval_every = 2000
  elif c.preset == "smoke":
    c.model.update(hidden=(32,), latent_dim=4)
    c.eval.update(num_iwae_samples=8, iwae_chunk=4)
    c.optim.ema_decay = 0.9
    c.batch_size = 16
    c.num_train_steps = 6
    c.log_every = 2
    c.checkpoint_every = 3
    c.sample_every = 6
    c.num_samples = 16
    c.eval_every = 6
  return c


def main(argv=None):
  from jaxgen.vae.build import make_vae, make_vae_eval_fn, validate_vae_config
  experiment_main(__file__, "vae_digits", validate=validate_vae_config, build_family=make_vae,
                  eval_fn_factory=make_vae_eval_fn, argv=argv)


if __name__ == "__main__":
  main()
