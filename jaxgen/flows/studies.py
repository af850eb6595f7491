"""End-of-training studies on a trained flow: the generative classifier and inverse problems (digits).

Each `*_hook(config, model, workdir)` returns hook(state, step) -> {name: scalar} for
jaxgen.flows.experiment.image_eval_fn, and writes its details (JSON, images) into workdir.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.flows import inverse as inv
from jaxgen.flows.classifier import empirical_log_prior, make_flow_classifier
from jaxgen.flows.experiment import heldout_split, train_split, write_json


def classifier_hook(config, model, workdir: str):
  def hook(state, step):
    from jaxgen.eval.plain_classifier import hidden_width_for, train_mlp_classifier
    from jaxgen.nn.unet import count_params
    train, test = train_split(config), heldout_split(config)
    log_prior = empirical_log_prior(train["label"], model.num_classes)
    classify = make_flow_classifier(model, state.ema_params, log_prior)
    preds = np.concatenate([np.asarray(classify(test["image"][i:i + config.eval_batch_size])[0])
                            for i in range(0, len(test["image"]), config.eval_batch_size)])
    flow_acc = float(np.mean(preds == test["label"]))
    n_flow = count_params(state.params)
    d = int(np.prod(test["image"].shape[1:]))
    hidden = hidden_width_for(n_flow, d, model.num_classes)
    base = train_mlp_classifier(train["image"].reshape(len(train["image"]), -1) / 255.0, train["label"],
                                test["image"].reshape(len(test["image"]), -1) / 255.0, test["label"],
                                hidden=hidden, num_classes=model.num_classes, steps=config.baseline.steps,
                                seed=config.seed)
    result = {"flow_classifier_test_accuracy": flow_acc, "flow_num_params": n_flow,
              "mlp_test_accuracy": base["test_accuracy"], "mlp_num_params": base["num_params"], "mlp_hidden": hidden,
              "num_test_examples": len(preds)}
    write_json(os.path.join(workdir, "classifier.json"), result)
    return {k: float(v) for k, v in result.items()}
  return hook


def run_inverse_problems(config, model, params, workdir: str) -> dict:
  """Denoising and block inpainting on the held-out split: PSNRs of MAP, posterior samples and baselines."""
  from jaxgen.train.images import save_image_grid
  c = config.inverse
  test, train = heldout_split(config), train_split(config)
  x01 = jnp.asarray(test["image"], jnp.float32) / 255.0
  fill = float(np.asarray(train["image"], np.float32).mean() / 255.0)
  mask_np = inv.block_mask(x01.shape[1:], c.block)
  results, rng = {}, jax.random.PRNGKey(config.seed + 11)
  for i, (task, sigma) in enumerate((("denoise", c.denoise_sigma), ("inpaint", c.inpaint_sigma))):
    y, mask = inv.observe(x01, task, jax.random.fold_in(rng, i), sigma=sigma, mask=mask_np)
    base = inv.no_prior_estimate(y, mask, fill)
    eps0 = inv.initial_latent(model, params, base)
    solve = jax.jit(lambda y, e, w: inv.map_estimate(model, params, y, mask, e, sigma=sigma, steps=c.map_steps,
                                                     learning_rate=c.map_learning_rate, prior_weight=w))
    x_map, eps_map, acc = solve(y, eps0, 1.0)
    results[f"{task}_map_accepted_fraction"] = float(acc)
    x_fit, _, _ = solve(y, eps0, 0.0)
    sampler = jax.jit(lambda y, e, k: inv.posterior_samples(model, params, y, mask, e, k, sigma=sigma,
                                                            steps=c.mala_steps, step_size=c.mala_step_size))
    chains = [sampler(y, eps_map, jax.random.fold_in(rng, 100 + i)) for i in range(c.num_chains)]
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
