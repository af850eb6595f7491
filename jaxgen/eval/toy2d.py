"""Evaluations on the procedural 2-D data sets (jaxgen.data.toy2d): a GAN's mode coverage, a flow's density.

  make_mode_coverage_eval   samples/modes_covered, samples/high_quality_fraction of EMA-generator samples on
                            the ring of 8 Gaussians (jaxgen.eval.mode_coverage)
  make_flow_density_eval    test/grid_mass (the learned density integrated on a grid, ~1) and, on the ring of
                            8 Gaussians, test/true_entropy_nats and test/kl_nats = KL(p || q) on the held-out
                            points; at the last step workdir/density.png (data, density, samples)
"""
from __future__ import annotations

import os

import jax
import numpy as np

from jaxgen.eval.likelihood import evaluate_per_example

NUM_COVERAGE_SAMPLES = 10_000


def make_mode_coverage_eval(config, gan, workdir=None):
  from jaxgen.data.toy2d import RING_STD, ring_centers
  from jaxgen.eval.mode_coverage import mode_coverage
  sample = jax.jit(lambda p, r: gan.sample(p, r, NUM_COVERAGE_SAMPLES))
  rng = jax.random.PRNGKey(config.seed + 777)

  def eval_fn(state, step):
    cov = mode_coverage(np.asarray(sample(state.ema_params, rng)), ring_centers(), RING_STD)
    return {"samples/modes_covered": float(cov["modes_covered"]),
            "samples/high_quality_fraction": cov["high_quality_fraction"]}
  return eval_fn


def make_flow_density_eval(config, flow, workdir=None):
  from jaxgen.data import load_heldout
  from jaxgen.data.toy2d import eight_gaussians_entropy, eight_gaussians_log_prob
  name = config.data.name
  test = load_heldout(config)
  lim, n = config.eval.grid_limit, config.eval.grid_size
  axis = np.linspace(-lim, lim, n, dtype=np.float32)
  grid = {"points": np.stack(np.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)}
  cell = (axis[1] - axis[0]) ** 2
  entropy = eight_gaussians_entropy() if name == "eight_gaussians" else None
  nll_jit = jax.jit(lambda p, b: flow.nll(p, b["points"]))     # compiled once; params are an argument

  def eval_fn(state, step):
    nll_fn = lambda b, _: nll_jit(state.ema_params, b)   # noqa: E731
    log_q = -evaluate_per_example(nll_fn, grid, config.eval.batch_size)
    out = {"test/grid_mass": float(np.exp(log_q).sum() * cell)}
    if entropy is not None:
      nll = evaluate_per_example(nll_fn, test, config.eval.batch_size)
      out["test/true_entropy_nats"] = entropy
      out["test/kl_nats"] = float(np.mean(nll + eight_gaussians_log_prob(test["points"])))   # same points
    if workdir is not None and step == config.num_train_steps and jax.process_index() == 0:
      samples = np.asarray(jax.jit(flow.sample, static_argnums=(2,))(state.ema_params, jax.random.PRNGKey(1), 2000))
      nll = evaluate_per_example(nll_fn, test, config.eval.batch_size)
      save_density_figure(os.path.join(workdir, "density.png"), axis, np.exp(log_q).reshape(n, n), samples,
                          test["points"], title=f"{config.model.kind} on {name}: test NLL {nll.mean():.3f} nats")
    return out
  return eval_fn


def save_density_figure(path, axis, density, samples, data, title=""):
  from jaxgen.train.images import pyplot
  plt = pyplot()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig, ax = plt.subplots(1, 3, figsize=(9, 3.2))
  ext = (axis[0], axis[-1], axis[0], axis[-1])
  ax[0].scatter(data[:2000, 0], data[:2000, 1], s=1)
  ax[0].set_title("data")
  ax[1].imshow(density, origin="lower", extent=ext, cmap="viridis")
  ax[1].set_title("model density")
  ax[2].scatter(samples[:, 0], samples[:, 1], s=1, c="C1")
  ax[2].set_title("model samples")
  for a in ax:
    a.set_xlim(ext[0], ext[1])
    a.set_ylim(ext[2], ext[3])
    a.set_aspect("equal")
    a.set_xticks([])
    a.set_yticks([])
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)
  return path
