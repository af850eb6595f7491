"""Host-side wiring shared by the flow experiments: data, held-out evaluation and figures.

eval functions follow the trainer's `eval_fn(state, step) -> {name: scalar}`; heavier work (figures,
classifier and inverse-problem studies) runs at the last step through `final_hooks`.
"""
from __future__ import annotations

import json
import math
import os
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.eval.likelihood import evaluate_per_example

EVAL_SEED = 0xE7A1


def toy2d_data_fn(config):
  from jaxgen.data.toy2d import toy2d_iterator
  return lambda start_step: toy2d_iterator(config.data.name, global_batch_size=config.batch_size,
                                           seed=config.seed, start_step=start_step)


def heldout_split(config):
  """The data set's whole evaluation split as numpy {'image', 'label'} (digits without TensorFlow)."""
  if config.data.name == "digits":
    from jaxgen.data.builders.digits import digits_split_arrays
    image, label = digits_split_arrays("test")
    return {"image": image, "label": label}
  from jaxgen.data import tfds
  return tfds.load_split_numpy(config.data.name, tfds.get_dataset_spec(config.data.name).eval_split,
                               config.data.get("data_dir"), download=config.data.get("download", True))


def train_split(config):
  if config.data.name == "digits":
    from jaxgen.data.builders.digits import digits_split_arrays
    image, label = digits_split_arrays("train")
    return {"image": image, "label": label}
  from jaxgen.data import tfds
  return tfds.load_split_numpy(config.data.name, "train", config.data.get("data_dir"))


def heldout_bits_per_dim_fn(model, split, batch_size: int, seed: int = EVAL_SEED) -> Callable:
  """params -> mean bits/dim over every held-out image (fixed uniform dequantisation noise, remainder kept).
  The per-batch function is compiled once, with the parameters as an argument (not baked-in constants)."""
  nll = jax.jit(lambda p, b, k: model.nll(p, b["image"], k, b["label"] if model.num_classes else None))

  def bits_per_dim(params) -> float:
    fn = lambda b, k: nll(params, b, k)   # noqa: E731
    return float(np.mean(evaluate_per_example(fn, split, batch_size, jax.random.PRNGKey(seed))))
  return bits_per_dim


def image_eval_fn(config, model, workdir: str, final_hooks: Sequence[Callable] = ()):
  split = heldout_split(config)
  bits_per_dim = heldout_bits_per_dim_fn(model, split, config.eval_batch_size)

  def eval_fn(state, step):
    out = {"test_bits_per_dim": bits_per_dim(state.ema_params),
           "test_bits_per_dim_raw": bits_per_dim(state.params),
           "num_test_examples": float(len(split["image"]))}
    if step == config.num_train_steps:
      for hook in final_hooks:
        out.update(hook(state, step) or {})
    return out
  return eval_fn


def latent_figures_hook(config, model, workdir: str):
  """Temperature grids, interpolations, class-mean manipulation (config.figures.manipulate = (from, to))."""
  from jaxgen.flows.latent import class_mean_latents, interpolate, manipulate
  from jaxgen.train.images import save_image_grid

  def hook(state, step):
    params, out_dir = state.ema_params, os.path.join(workdir, "figures")
    rng, results = jax.random.PRNGKey(config.seed + 7), {}
    sample = jax.jit(model.sample, static_argnums=(2,))
    for t in config.figures.temperatures:
      images = sample(params, rng, 100, t)
      save_image_grid(os.path.join(out_dir, f"samples_T{t:g}.png"), np.asarray(images), ncols=10)
      if config.data.name == "digits":
        from jaxgen.eval.digits_classifier import fit_digits_classifier, score_digit_samples
        s = score_digit_samples(fit_digits_classifier(), np.asarray(images))
        results[f"samples_T{t:g}_probe_confidence"] = s["mean_confidence"]
        results[f"samples_T{t:g}_classes_covered"] = float(s["classes_covered"])
    test = heldout_split(config)
    if model.num_classes:
      return results
    n = 8
    strip = interpolate(model, params, test["image"][:n], test["image"][n:2 * n], 8)
    save_image_grid(os.path.join(out_dir, "interpolations.png"), np.asarray(strip).reshape((-1,) + strip.shape[2:]),
                    ncols=8)
    src, dst = config.figures.manipulate
    train = train_split(config)
    means = class_mean_latents(model, params, train["image"], train["label"], int(train["label"].max()) + 1)
    pick = test["image"][test["label"] == src][:n]
    strengths = np.linspace(0.0, 1.5, 7)
    moved = manipulate(model, params, pick, means[dst] - means[src], strengths)
    save_image_grid(os.path.join(out_dir, f"manipulate_{src}_to_{dst}.png"),
                    np.asarray(moved).reshape((-1,) + moved.shape[2:]), ncols=len(strengths))
    if config.data.name == "digits":
      from jaxgen.eval.digits_classifier import _to_unit_pixels, fit_digits_classifier
      probe = fit_digits_classifier()
      last = np.asarray(moved[:, int(np.argmin(np.abs(strengths - 1.0)))])   # the full class-mean difference
      frac = float(np.mean(probe.model.predict(_to_unit_pixels(last)) == dst))
      results[f"manipulated_{src}_to_{dst}_probe_fraction"] = frac
    return results
  return hook


def toy2d_eval_fn(config, model, workdir: str):
  from jaxgen.data.toy2d import eight_gaussians_entropy, eight_gaussians_log_prob, sample_toy2d
  name = config.data.name
  test = sample_toy2d(name, config.eval.num_test, np.random.default_rng([config.seed, EVAL_SEED]))
  lim, n = config.eval.grid_limit, config.eval.grid_size
  axis = np.linspace(-lim, lim, n, dtype=np.float32)
  grid = np.stack(np.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
  cell = (axis[1] - axis[0]) ** 2
  entropy = eight_gaussians_entropy() if name == "eight_gaussians" else None

  nll_jit = jax.jit(lambda p, b: model.nll(p, b["x"]))     # compiled once; params are an argument

  def eval_fn(state, step):
    params = state.ema_params
    nll_fn = lambda b, _: nll_jit(params, b)   # noqa: E731
    nll = evaluate_per_example(nll_fn, {"x": test}, config.eval_batch_size)
    out = {"test_nll_nats": float(nll.mean())}
    log_q = -evaluate_per_example(nll_fn, {"x": grid}, config.eval_batch_size)
    out["grid_mass"] = float(np.exp(log_q).sum() * cell)
    if entropy is not None:
      out["true_entropy_nats"] = entropy
      out["kl_nats"] = float(np.mean(nll + eight_gaussians_log_prob(test)))   # KL(p || q), same samples
    if step == config.num_train_steps:
      samples = np.asarray(jax.jit(model.sample, static_argnums=(2,))(params, jax.random.PRNGKey(1), 2000))
      save_toy2d_figure(os.path.join(workdir, "density.png"), axis, np.exp(log_q).reshape(n, n), samples, test,
                        title=f"{config.model.kind} on {name}: test NLL {out['test_nll_nats']:.3f} nats")
    return out
  return eval_fn


def save_toy2d_figure(path, axis, density, samples, data, title=""):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
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
    a.set_xlim(ext[0], ext[1]); a.set_ylim(ext[2], ext[3]); a.set_aspect("equal"); a.set_xticks([]); a.set_yticks([])
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)
  return path


def write_json(path, obj):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(obj, f, indent=2)
  return path


def flow_main(config_file: str, name: str, *, image: bool = True, extra_hooks: Sequence[Callable] = (), argv=None):
  """The main every flow experiment shares: the common command line with the flow family and its evals.

  extra_hooks: functions (config, model, workdir) -> hook(state, step) -> dict, run at the last step.
  """
  from jaxgen.flows.build import make_flow, validate_flow_config
  from jaxgen.train.cli import experiment_main
  if image:
    def eval_factory(config, model, workdir):
      hooks = [latent_figures_hook(config, model, workdir)] + [h(config, model, workdir) for h in extra_hooks]
      return image_eval_fn(config, model, workdir, hooks)
    data_factory = None
  else:
    eval_factory = toy2d_eval_fn
    data_factory = toy2d_data_fn
  experiment_main(config_file, name, validate=validate_flow_config, build_family=make_flow,
                  data_fn_factory=data_factory, eval_fn_factory=eval_factory, argv=argv)
