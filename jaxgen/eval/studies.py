"""Studies on trained flows and diffusion models (digits): generative classifiers and inverse problems.

  make_flow_classifier_eval  (a final evaluation of a class-conditional flow run) Bayes' rule over the flow's
                             exact class likelihoods vs an MLP classifier with about as many parameters, both on
                             the held-out split; test/classifier_accuracy, test/mlp_accuracy; classifier.json
  make_diffusion_classifier_eval  the same for a class-conditional DDPM, over its conditional ELBOs
  run_inverse_study          (a study over a finished run, experiments.flow_inverse) denoising and inpainting of
                             the held-out digits with the flow as the prior: MAP and MALA posterior samples vs
                             the no-prior estimate, PSNRs in inverse.json and figures/inverse_*.png
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.data import load_heldout, load_split
from jaxgen.flows import inverse as inv
from jaxgen.flows.classifier import empirical_log_prior, make_flow_classifier


def write_json(path, obj):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(obj, f, indent=2)
  return path


def make_flow_classifier_eval(config, model, workdir: str):
  return _generative_classifier_eval(config, model, workdir, "flow",
                                     lambda params, log_prior: make_flow_classifier(model, params, log_prior))


def make_diffusion_classifier_eval(config, model, workdir: str):
  """(a final evaluation of a class-conditional DDPM run) Bayes' rule over conditional ELBOs estimated on
  config.eval.classifier_timesteps shared timesteps and noises (jaxgen.diffusion.classifier; config.eval.
  classifier_score 'elbo' or Li et al.'s 'eps_mse') vs an MLP with about
  as many parameters; test/classifier_accuracy, test/mlp_accuracy; classifier.json."""
  from jaxgen.diffusion.classifier import make_diffusion_classifier
  from jaxgen.eval.config import DIFFUSION_CLASSIFIER_DEFAULTS as defaults
  steps = int(config.eval.get("classifier_timesteps", defaults["classifier_timesteps"]))
  score = config.eval.get("classifier_score", defaults["classifier_score"])
  return _generative_classifier_eval(
      config, model, workdir, "diffusion",
      lambda params, log_prior: make_diffusion_classifier(model, params, log_prior, num_timesteps=steps,
                                                          seed=config.seed, score=score),
      extra={"classifier_timesteps": steps, "classifier_score": score})


def _generative_classifier_eval(config, model, workdir: str, kind: str, make_classify, extra=None):
  from jaxgen.eval.plain_classifier import hidden_width_for, train_mlp_classifier
  from jaxgen.nn.unet import count_params

  def eval_fn(state, step):
    train, test = load_split(config, "train"), load_heldout(config)
    log_prior = empirical_log_prior(train["label"], model.num_classes)
    classify = make_classify(state.ema_params, log_prior)
    bs = config.eval.batch_size
    from jaxgen.train.logging import TaskProgress
    n = len(test["image"])
    bar = TaskProgress(n, f"{kind} classifier", "img", note=f"batches of {min(bs, n)}; the first compiles")
    preds = []
    for i in range(0, n, bs):
      preds.append(np.asarray(classify(test["image"][i:i + bs])[0]))
      bar.update(len(preds[-1]))
    preds = np.concatenate(preds)
    acc = float(np.mean(preds == test["label"]))
    n_model = count_params(state.params)
    d = int(np.prod(test["image"].shape[1:]))
    hidden = hidden_width_for(n_model, d, model.num_classes)
    base = train_mlp_classifier(train["image"].reshape(len(train["image"]), -1) / 255.0, train["label"],
                                test["image"].reshape(len(test["image"]), -1) / 255.0, test["label"],
                                hidden=hidden, num_classes=model.num_classes, steps=config.baseline.steps,
                                seed=config.seed, progress="MLP baseline of the classifier")
    result = {f"{kind}_classifier_test_accuracy": acc, f"{kind}_num_params": n_model,
              "mlp_test_accuracy": base["test_accuracy"], "mlp_num_params": base["num_params"], "mlp_hidden": hidden,
              "num_test_examples": len(preds), **(extra or {})}
    write_json(os.path.join(workdir, "classifier.json"), result)
    return {"test/classifier_accuracy": acc, "test/mlp_accuracy": base["test_accuracy"],
            "test/classifier_num_params": float(n_model), "test/mlp_num_params": float(base["num_params"])}
  return eval_fn


def run_inverse_study(config, workdir: str) -> dict:
  """Restore the flow prior of config.prior_workdir (jaxgen.train.run.load_run) and solve the problems."""
  from jaxgen.train.run import load_run
  run = load_run(config.prior_workdir, expect={"family": "flow"})
  results = run_inverse_problems(run.config, config.inverse, run.family, run.state.ema_params, workdir,
                                 seed=config.seed)
  results["prior_step"] = run.step
  return results


def run_inverse_problems(data_config, c, model, params, workdir: str, *, seed: int = 0) -> dict:
  """Denoising and block inpainting on the held-out split of the prior's data (`data_config`: its run config)
  with settings `c` (config.inverse): PSNRs of MAP, posterior samples and baselines."""
  from jaxgen.train.images import save_image_grid
  config = data_config
  test, train = load_heldout(config), load_split(config, "train")
  x01 = jnp.asarray(test["image"], jnp.float32) / 255.0
  fill = float(np.asarray(train["image"], np.float32).mean() / 255.0)
  mask_np = inv.block_mask(x01.shape[1:], c.block)
  results, rng = {}, jax.random.PRNGKey(seed + 11)
  from jaxgen.train.logging import TaskProgress
  stages = TaskProgress(2 * (2 + c.num_chains), "inverse problems", quiet_start=True)   # a line per stage, stderr
  for i, (task, sigma) in enumerate((("denoise", c.denoise_sigma), ("inpaint", c.inpaint_sigma))):
    y, mask = inv.observe(x01, task, jax.random.fold_in(rng, i), sigma=sigma, mask=mask_np)
    base = inv.no_prior_estimate(y, mask, fill)
    eps0 = inv.initial_latent(model, params, base)
    solve = jax.jit(lambda y, e, w: inv.map_estimate(model, params, y, mask, e, sigma=sigma, steps=c.map_steps,
                                                     learning_rate=c.map_learning_rate, prior_weight=w))
    stages.stage(f"{task}: MAP estimate ({c.map_steps} steps over {x01.shape[0]} images; compiles first)")
    x_map, eps_map, acc = solve(y, eps0, 1.0)
    results[f"{task}_map_accepted_fraction"] = float(acc)
    stages.stage(f"{task}: latent fit without the prior")
    x_fit, _, _ = solve(y, eps0, 0.0)
    sampler = jax.jit(lambda y, e, k: inv.posterior_samples(model, params, y, mask, e, k, sigma=sigma,
                                                            steps=c.mala_steps, step_size=c.mala_step_size))
    chains = []
    for j in range(c.num_chains):
      stages.stage(f"{task}: MALA chain {j + 1}/{c.num_chains} ({c.mala_steps} steps)")
      chains.append(sampler(y, eps_map, jax.random.fold_in(rng, 100 + j)))
    samples = [ch["sample"] for ch in chains]
    post_mean = jnp.mean(jnp.stack([ch["mean"] for ch in chains]), axis=0)
    results[f"{task}_mala_accept_rate"] = float(np.mean([np.asarray(ch["accept_rate"]) for ch in chains]))
    results[f"{task}_mala_median_step_size"] = float(np.median(np.asarray(chains[0]["step_size"])))
    r = {"no_prior": inv.psnr(base, x01), "latent_fit_no_prior": inv.psnr(x_fit, x01), "map": inv.psnr(x_map, x01),
         "posterior_sample": np.mean([inv.psnr(smp, x01) for smp in samples], axis=0),
         "posterior_mean": inv.psnr(post_mean, x01)}
    for k, v in r.items():   # images whose estimate is not finite are counted, not averaged in
      v = np.asarray(v)
      results[f"{task}_psnr_{k}"] = float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else float("nan")
      results[f"{task}_nonfinite_{k}"] = int((~np.isfinite(v)).sum())
    n = 8
    rows = [x01[:n], jnp.clip(mask * y + (1 - mask) * 0.0, 0, 1), base[:n], x_fit[:n], x_map[:n], samples[0][:n],
            post_mean[:n]]
    grid = jnp.stack([rr[:n] for rr in rows], axis=0).reshape((-1,) + x01.shape[1:])
    save_image_grid(os.path.join(workdir, "figures", f"inverse_{task}.png"), np.asarray(grid) * 2 - 1, ncols=n)
  results["num_test_examples"] = int(x01.shape[0])
  write_json(os.path.join(workdir, "inverse.json"), {"psnr_db_mean_over_images": results,
                                                     "settings": c.to_dict()})
  return results
