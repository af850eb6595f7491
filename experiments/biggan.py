r"""BigGAN (Brock et al. 2019) at 32x32, class-conditional: residual G with a shared class embedding, a
hierarchical latent and conditional batch norm, projection D, self-attention at 16x16, spectral norm in both
players, hinge loss, orthogonal regularisation of G, an EMA generator sampled with standing statistics,
truncation at sampling (networks: jaxgen.nn.biggan; family: the GAN, jaxgen.gan).

COMMAND (paper: the CIFAR-10 recipe; TFDS prepares CIFAR-10 on first use, which needs the network):
  python -m experiments.biggan --workdir=workdirs/biggan_cifar
Quick, offline on the 32x32 `shapes`, conditional on the first object's kind (5 classes):
  python -m experiments.biggan --config=experiments/biggan.py:quick --workdir=workdirs/biggan_quick
Quick, offline on the bundled 8x8 digits, conditional on the digit (10 classes; beside the conditional DCGAN's
quick digits row):
  python -m experiments.biggan --config=experiments/biggan.py:quick_digits --workdir=workdirs/biggan_digits
The truncation curve of a finished run (FID / precision / recall / class agreement over truncations):
  python -m benchmarks.gan_truncation --workdir=workdirs/biggan_quick
CI check:
  python -m experiments.biggan --config=experiments/biggan.py:smoke --workdir=/tmp/biggan_smoke
Other options: --config.gan.bn_stats=batch|running|standing (G's batch norm when sampling)
  --config.gan.truncation=0.5 --config.gan.ortho_weight=0 --config.model.attn_res=0 --config.model.hier=False

paper: ch=256, G (4, 4, 4) x ch from 4x4 (3 up-blocks), D (4, 4, 4, 4) x ch with two down-blocks, attention at
  16x16 in both, latent 128 in 4 chunks of 32, shared embedding 128; batch 50, Adam lr 2e-4 for both players,
  b1=0, b2=0.999, 4 D steps per G step (gan.n_critic=4: the family gives each D step its own slice of the
  batch, so batch_size=200 gives the paper's 50 per D step and 50 for G), hinge loss, EMA 0.9999 from step 1000,
  500k steps. Choices stated: the orthogonal regulariser at 1e-4 (the paper's ImageNet setting; the authors'
  CIFAR script, BigGAN-PyTorch launch_cifar_ema.sh, uses G_ortho 0.0 and no attention), and hierarchical z
  with a shared embedding (also ImageNet features) because this preset is the family's full BigGAN; the
  weights use the layers' LeCun-normal init (the paper: orthogonal, the CIFAR script: N(0, 0.02)); the
  projection embedding is spectrally normalised (an SN linear layer on one-hot labels, with a bias).
quick: ch=32 with G widths (128, 64, 32) and D widths (32, 64, 128, 128), latent 64 (4 chunks of 16), shared
  embedding 32, 2000 steps of 64 (not the DCGAN row's 3000: measured side by side on the shared 2-core machine a
  step here ran at ~37 img/s against the quick_shapes DCGAN's 42-52, and compiles in ~100 s against 5 s, so 2000
  steps keeps the wall time of the DCGAN row; compare the two at equal steps on the 500-step curve), n_critic=2 (each D step and the G step on 32 examples: BN statistics of 32),
  Adam 2e-4 b1=0, EMA 0.999 from step 500 (a 3000-step run cannot wait for 0.9999), ortho 1e-4; samples from
  the EMA generator with standing statistics (16 batches of 64).

EXPECTED
  samples/step_<N>.png from the EMA generator (one class per row); metrics.jsonl carries sample metrics of
  1000 samples in the shapes feature space every 500 steps (samples/fid, precision, recall, and
  samples/label_accuracy with samples/label_accuracy_chance). docs/gans_biggan_draft.md has the figures
  measured here. paper: not run here (no CIFAR-10, no accelerator); the paper reports FID 14.73 / IS 9.22 on
  CIFAR-10 (not verified).
"""
from __future__ import annotations

from jaxgen.train.presets import PRESETS, base_config, cadence, smoke

PRESETS = PRESETS[:2] + ("quick_digits",) + PRESETS[2:]     # paper, quick, quick_digits, smoke

QUICK_STEPS = 2000   # see the docstring: fewer steps than the DCGAN row, for the same wall-time budget


def get_config(preset: str = "paper"):
  c = base_config("gan", preset or "paper", PRESETS)
  c.data.name = "cifar10"
  c.model = dict(kind="biggan", latent_dim=128, ch=256, g_mults=(4, 4, 4), d_mults=(4, 4, 4, 4),
                 d_down=(True, True, False, False), shared_dim=128, hier=True, attn_res=16, num_classes=10)
  c.gan = dict(loss="hinge", gp_weight=0.0, r1_gamma=0.0, truncation=0.0, n_critic=4, ortho_weight=1e-4,
               bn_stats="standing", standing_batches=16)
  c.optim.update(b1=0.0, b2=0.999, ema_decay=0.9999, ema_start_step=1000, warmup_steps=0,
                 groups=dict(generator=dict(learning_rate=2e-4), discriminator=dict(learning_rate=2e-4)))
  c.batch_size = 200                 # 4 D steps of 50 (and the G step on the last 50)
  c.num_samples = 100
  cadence(c, steps=500_000, every=5000, log_every=500, eval_every=10_000)
  c.evals = ("sample_metrics",)
  c.eval.fid_samples = 10_000
  if c.preset == "quick":
    c.data.name = "shapes"
    c.model.update(latent_dim=64, ch=16, g_mults=(4, 2, 1), d_mults=(1, 2, 4), d_down=(True, True, False),
                   shared_dim=32, num_classes=5)
    c.gan.n_critic = 2
    c.optim.update(ema_decay=0.999, ema_start_step=500)
    c.batch_size = 64
    c.num_samples = 60
    cadence(c, steps=QUICK_STEPS, every=500, log_every=100)
    c.eval.fid_samples = 1000
  elif c.preset == "quick_digits":
    # The bundled 8x8 digits, conditional on the digit (10 classes): one up-block from 4x4 (attention at 8x8),
    # D with its down-block last, latent 32 (2 chunks of 16); the EMA from step 500 at 0.995 (a 2000-step run).
    c.data.name = "digits"
    c.model.update(latent_dim=32, ch=32, g_mults=(2,), d_mults=(1, 2), d_down=(False, True), shared_dim=16,
                   attn_res=8, num_classes=10)
    c.gan.n_critic = 2
    c.optim.update(ema_decay=0.995, ema_start_step=500)
    c.batch_size = 64
    c.num_samples = 100
    cadence(c, steps=QUICK_STEPS, every=500, log_every=100)
    c.eval.fid_samples = 1000
  elif c.preset == "smoke":
    c.data.name = "shapes_tiny"
    c.model.update(latent_dim=6, ch=4, g_mults=(2, 1), d_mults=(1, 2), d_down=(True, True), shared_dim=4,
                   attn_res=16, num_classes=5)
    c.gan.update(n_critic=2, standing_batches=2)
    c.optim.update(ema_start_step=2)
    smoke(c, num_samples=20)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
