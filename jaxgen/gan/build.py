"""Build GANs from ml_collections configs (validated first, nothing compiled) and their evaluations.

Two network kinds: 'mlp' (the original GAN of Goodfellow et al. 2014 on 2-D toy data) and 'dcgan'
(Radford et al. 2015 on images; class-conditional with model.num_classes > 0).
Config fields: data.name, model.{kind, latent_dim, g_hidden, d_hidden | g_channels, d_channels, d_norm,
num_classes}, gan.{loss, gp_weight, r1_gamma, truncation, g_learning_rate, d_learning_rate, b1, b2}.
"""
from __future__ import annotations

import os

import numpy as np

from jaxgen.gan import losses

KINDS = ("mlp", "dcgan")


def validate_gan_config(config) -> None:
  from jaxgen.nn.dcgan import D_NORMS, check_dcgan_shape
  m, g = config.model, config.gan
  if m.kind not in KINDS:
    raise ValueError(f"model.kind={m.kind!r}; choose one of: {', '.join(KINDS)}")
  losses.check_loss(g.loss)
  if m.latent_dim < 1:
    raise ValueError(f"model.latent_dim={m.latent_dim} must be >= 1")
  for name in ("gp_weight", "r1_gamma", "truncation"):
    if not g[name] >= 0:
      raise ValueError(f"gan.{name}={g[name]} must be >= 0")
  for name in ("g_learning_rate", "d_learning_rate"):
    if not g[name] > 0:
      raise ValueError(f"gan.{name}={g[name]} must be > 0")
  if m.kind == "mlp":
    from jaxgen.data.toy2d import TOY2D
    if config.data.name not in TOY2D:
      raise ValueError(f"data.name={config.data.name!r}: the MLP GAN trains on 2-D toy data ({', '.join(TOY2D)})")
    return
  from jaxgen.data.tfds import get_dataset_spec
  spec = get_dataset_spec(config.data.name)
  check_dcgan_shape(spec.image_shape, tuple(m.g_channels), "model.g")
  check_dcgan_shape(spec.image_shape, tuple(m.d_channels), "model.d")
  if m.d_norm not in D_NORMS:
    raise ValueError(f"model.d_norm={m.d_norm!r}; choose one of: {', '.join(D_NORMS)}")
  if m.num_classes and m.num_classes != spec.num_classes:
    raise ValueError(f"model.num_classes={m.num_classes} but {spec.name} has {spec.num_classes} classes (or use 0)")
  if m.num_classes and config.num_samples % m.num_classes:
    raise ValueError(f"num_samples={config.num_samples} must be a multiple of model.num_classes={m.num_classes} "
                     "(one row of samples per class)")


def make_gan(config):
  from jaxgen.gan.gan import GAN
  from jaxgen.nn.mlp import MLP, leaky_relu_02
  validate_gan_config(config)
  m, g = config.model, config.gan
  if m.kind == "mlp":
    import flax.linen as nn
    gen = MLP(tuple(m.g_hidden), 2, activation=nn.relu)
    disc = _squeeze(MLP(tuple(m.d_hidden), 1, activation=leaky_relu_02))
    shape, num_classes = (2,), 0
  else:
    from jaxgen.data.tfds import get_dataset_spec
    from jaxgen.nn.dcgan import DCGANDiscriminator, DCGANGenerator
    shape, num_classes = get_dataset_spec(config.data.name).image_shape, m.num_classes
    gen = DCGANGenerator(shape, tuple(m.g_channels), num_classes)
    disc = DCGANDiscriminator(tuple(m.d_channels), m.d_norm, num_classes)
  return GAN(generator=gen, discriminator=disc, data_shape=tuple(shape), latent_dim=m.latent_dim, loss=g.loss,
             gp_weight=g.gp_weight, r1_gamma=g.r1_gamma, num_classes=num_classes, truncation=g.truncation,
             g_learning_rate=g.g_learning_rate, d_learning_rate=g.d_learning_rate, b1=g.b1, b2=g.b2)


def _squeeze(mlp):
  from jaxgen.nn.mlp import MLP

  class Logit(MLP):
    def __call__(self, x):
      return super().__call__(x)[:, 0]
  return Logit(mlp.hidden, mlp.out_features, mlp.activation)


def toy2d_data_fn(config):
  from jaxgen.data.toy2d import toy2d_iterator
  return lambda start_step: toy2d_iterator(config.data.name, global_batch_size=config.batch_size,
                                           seed=config.seed, start_step=start_step)


def make_toy2d_eval_fn(config, gan, workdir=None, num: int = 10_000):
  """eval_fn(state, step): modes covered and high-quality fraction of `num` EMA-generator samples on the ring
  of 8 Gaussians (jaxgen.eval.mode_coverage); writes a scatter plot under workdir/samples."""
  import jax
  from jaxgen.data.toy2d import RING_STD, ring_centers, sample_toy2d
  from jaxgen.eval.mode_coverage import mode_coverage
  sample = jax.jit(lambda p, r: gan.sample(p, r, num))
  rng = jax.random.PRNGKey(config.seed + 777)

  def eval_fn(state, step):
    x = np.asarray(sample(state.ema_params, rng))
    out = {}
    if config.data.name == "eight_gaussians":
      cov = mode_coverage(x, ring_centers(), RING_STD)
      out = {"modes_covered": cov["modes_covered"], "high_quality_fraction": cov["high_quality_fraction"]}
    if workdir is not None and jax.process_index() == 0:
      real = sample_toy2d(config.data.name, 2000, np.random.default_rng(0))
      scatter(os.path.join(workdir, "samples", f"step_{step}.png"), real, x[:2000], title=f"step {step} {out}")
    return out

  return eval_fn


def scatter(path, real, fake, title=""):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
  ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.3, label="data")
  ax.scatter(fake[:, 0], fake[:, 1], s=2, alpha=0.3, label="generator (EMA)")
  ax.set_xlim(-3, 3)
  ax.set_ylim(-3, 3)
  ax.set_aspect("equal")
  ax.legend(loc="upper right", fontsize=6, markerscale=4)
  ax.set_title(title, fontsize=6)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def make_digits_probe_eval_fn(config, gan, workdir=None, num: int = 1000):
  """eval_fn(state, step) for GANs on digits: the sklearn probe's scores of `num` EMA-generator samples
  (conditional: also the fraction classified as the class asked for); other data sets: {}."""
  if config.data.name != "digits":
    return lambda state, step: {}
  import jax
  from jaxgen.eval.digits_classifier import fit_digits_classifier, score_digit_samples
  probe = fit_digits_classifier(config.seed)
  sample = jax.jit(lambda p, r: gan.sample(p, r, num))
  rng = jax.random.PRNGKey(config.seed + 999)

  def eval_fn(state, step):
    x = np.asarray(sample(state.ema_params, rng))
    s = score_digit_samples(probe, x)
    out = {"probe_mean_confidence": s["mean_confidence"], "probe_confident_fraction": s["confident_fraction"],
           "probe_classes_covered": s["classes_covered"]}
    if gan.num_classes:
      from jaxgen.eval.digits_classifier import _to_unit_pixels
      pred = probe.model.predict(_to_unit_pixels(x))
      out["probe_label_agreement"] = float(np.mean(pred == np.asarray(gan.sample_labels(num))))
    return out

  return eval_fn
