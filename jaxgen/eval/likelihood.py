"""Held-out likelihoods: fixed-size batches that never drop the remainder, and the flow and VAE evaluations.

`evaluate_per_example` pads the last partial batch (by repeating its first example) to keep one compiled
shape and cuts the padding from the result, so every example is scored exactly once. The evaluations return
'test/...' metrics (jaxgen.train.family.METRIC_SECTIONS).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import jax
import numpy as np


def evaluate_per_example(fn: Callable, arrays: Dict[str, np.ndarray], batch_size: int, rng=None, *,
                         progress: Optional[str] = None, note: str = "", unit: str = "ex", log=None) -> np.ndarray:
  """fn(batch_dict, rng_or_None) -> (b,) per-example values; returns all N values (N = len of the arrays).
  `progress`: the task's name in progress lines (jaxgen.train.logging.TaskProgress, to `log`; `note` on the
  first); None: silent."""
  if batch_size < 1:
    raise ValueError(f"batch_size={batch_size} must be >= 1")
  sizes = {k: len(v) for k, v in arrays.items()}
  if len(set(sizes.values())) != 1:
    raise ValueError(f"arrays have different lengths: {sizes}")
  n = next(iter(sizes.values()))
  if n == 0:
    raise ValueError("nothing to evaluate: the arrays are empty")
  bar = None
  if progress is not None:
    from jaxgen.train.logging import TaskProgress
    bar = TaskProgress(n, progress, unit, log=log, note=f"{note}batches of {batch_size}; the first may compile")
  out = []
  for i, start in enumerate(range(0, n, batch_size)):
    batch = {k: np.asarray(v[start:start + batch_size]) for k, v in arrays.items()}
    b = len(next(iter(batch.values())))
    if b < batch_size:
      batch = {k: np.concatenate([v, np.repeat(v[:1], batch_size - b, axis=0)]) for k, v in batch.items()}
    key = None if rng is None else jax.random.fold_in(rng, i)
    out.append(np.asarray(fn(batch, key))[:b])
    if bar is not None:
      bar.update(b)
  return np.concatenate(out)


EVAL_SEED = 0xE7A1      # fixed dequantisation / binarisation noise: the same at every evaluation


def make_flow_heldout_eval(config, flow, workdir=None):
  """eval_fn(state, step): bits/dim of every held-out image (flows of images) or NLL in nats of the fixed
  held-out points (2-D flows), EMA params and raw params, the remainder never dropped; compiled once, with the
  parameters as an argument."""
  from jaxgen.data import load_heldout
  spec_split = load_heldout(config)
  batch_size = config.eval.batch_size
  if flow.is_image:
    nll = jax.jit(lambda p, b, k: flow.nll(p, b["image"], k, b["label"] if flow.num_classes else None))
    arrays = {k: spec_split[k] for k in ("image", "label")}
    rng, name = jax.random.PRNGKey(EVAL_SEED), "bits_per_dim"
  else:
    nll = jax.jit(lambda p, b, k: flow.nll(p, b["points"]))
    arrays, rng, name = spec_split, None, "nll_nats"

  def mean_nll(params, which) -> float:
    return float(np.mean(evaluate_per_example(lambda b, k: nll(params, b, k), arrays, batch_size, rng,
                                              progress=f"held-out {name} ({which} params)")))

  def eval_fn(state, step):
    return {f"test/{name}": mean_nll(state.ema_params, "EMA"), f"test/{name}_raw": mean_nll(state.params, "raw"),
            "test/num_examples": float(len(next(iter(arrays.values()))))}
  return eval_fn


def make_vae_heldout_eval(config, vae, workdir=None):
  """eval_fn(state, step): ELBO and IWAE(k) of the EMA params on the whole held-out split, in bits/dim and in
  nats per image (one fixed binarisation / dequantisation draw per image)."""
  import jax.numpy as jnp
  from jaxgen.data import load_heldout
  test = {"image": load_heldout(config)["image"]}
  e = config.eval
  k = e.num_iwae_samples

  @jax.jit
  def bounds(params, images, rng):
    elbo = vae.elbo_terms(params, images, rng)["elbo"]
    iwae = vae.iwae_bound(params, images, jax.random.fold_in(rng, 1), k, chunk=min(e.iwae_chunk, k))
    return jnp.stack([elbo, iwae], axis=1)

  def eval_fn(state, step):
    fn = lambda b, key: bounds(state.ema_params, b["image"], key)   # noqa: E731
    elbo, iwae = evaluate_per_example(fn, test, e.batch_size, jax.random.PRNGKey(EVAL_SEED),
                                      progress=f"held-out ELBO and IWAE({k})").T
    return {"test/elbo_bits_per_dim": float(np.mean(vae.to_bits_per_dim(elbo))),
            f"test/iwae{k}_bits_per_dim": float(np.mean(vae.to_bits_per_dim(iwae))),
            "test/elbo_nats": float(-elbo.mean()), f"test/iwae{k}_nats": float(-iwae.mean())}
  return eval_fn


def make_ddpm_vlb_eval(config, ddpm, workdir=None):
  """eval_fn(state, step): the variational bound (jaxgen.diffusion.vlb) of the EMA params on the whole held-out
  split with its prior, KL and decoder parts; one fixed noise draw per example and timestep (the same at every
  evaluation), the remainder never dropped. 8-bit images: bits/dim of the discrete data (test/bits_per_dim,
  test/vlb_*_bits_per_dim); continuous data (2-D points): the bound on the negative log-density in nats
  (test/nll_nats, test/vlb_*_nats) and, on the ring of 8 Gaussians, test/true_entropy_nats beside it. All T
  network passes per example: on digits' quick model (T=500) about a minute for the 300 test images."""
  import math

  from jaxgen.data import load_heldout
  test = load_heldout(config)
  feature = ddpm.codec.feature
  arrays = {k: test[k] for k in (feature,) + tuple(ddpm.cond_features)}
  discrete = ddpm.codec.bins > 0
  dims = math.prod(test[feature].shape[1:]) * math.log(2.0) if discrete else 1.0
  terms = jax.jit(lambda p, b, k: jax.numpy.stack([ddpm.vlb(p, b, k)[n] for n in ("total", "prior", "kl", "decoder")], 1))
  batch_size = min(config.eval.batch_size, len(test[feature]))

  def eval_fn(state, step):
    out = evaluate_per_example(lambda b, k: terms(state.ema_params, b, k), arrays, batch_size,
                               jax.random.PRNGKey(EVAL_SEED), progress="vlb",
                               note=f"{ddpm.schedule.num_timesteps} network passes per example; ") / dims
    total, prior, kl, decoder = out.mean(axis=0)
    if not discrete:
      res = {"test/nll_nats": float(total), "test/vlb_prior_nats": float(prior), "test/vlb_kl_nats": float(kl),
             "test/vlb_decoder_nats": float(decoder), "test/num_examples": float(len(out))}
      if config.data.name == "eight_gaussians":
        from jaxgen.data.toy2d import eight_gaussians_entropy
        res["test/true_entropy_nats"] = eight_gaussians_entropy()
      return res
    return {"test/bits_per_dim": float(total), "test/vlb_prior_bits_per_dim": float(prior),
            "test/vlb_kl_bits_per_dim": float(kl), "test/vlb_decoder_bits_per_dim": float(decoder),
            "test/num_examples": float(len(out))}
  return eval_fn
