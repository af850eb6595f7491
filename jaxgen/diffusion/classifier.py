"""A class-conditional diffusion model as a classifier (Bayes' rule over conditional ELBOs).

log p(x | c) >= -L(x, c), the variational bound of jaxgen.diffusion.vlb with the model conditioned on c. The
prior term L_T does not depend on c, and the sum over the T timesteps is estimated on K evenly spaced ones,
L(x, c) ~ (T / K) sum_k L_{t_k}(x, c), with the same timesteps and the same noise draws for every class (common
random numbers: the classes are compared on identical x_t, which removes most of the estimator's variance
from their differences). The prediction is argmax_c [log p(c) - L(x, c)] (Clark & Jaini 2023; Li et al. 2023
use the same idea with the eps-error instead of the exact KL terms).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgen.data.image import uint8_to_signed_unit
from jaxgen.diffusion import gaussian, parameterisation, samplers, vlb
from jaxgen.diffusion.options import CLASSIFIER_SCORES as SCORES


def make_diffusion_classifier(ddpm, params, log_prior, *, num_timesteps: int = 50, seed: int = 0,
                              score: str = "elbo"):
  """classify(images uint8 (B, H, W, C)) -> (predicted classes (B,), scores (B, classes)) as one jit."""
  if not ddpm.num_classes:
    raise ValueError("the diffusion classifier needs a class-conditional DDPM (model.num_classes > 0)")
  if score not in SCORES:
    raise ValueError(f"classifier score={score!r}; choose one of: {', '.join(SCORES)}")
  k = ddpm.num_classes
  ts = jnp.asarray(samplers.timestep_subsequence(ddpm.schedule.num_timesteps, num_timesteps), jnp.int32)
  scale = ddpm.schedule.num_timesteps / int(ts.shape[0])
  log_prior = jnp.asarray(log_prior, jnp.float32)
  base = jax.random.PRNGKey(seed)

  @jax.jit
  def classify(params, images):          # params an argument, not constants baked into the program
    x0 = uint8_to_signed_unit(images)
    b = x0.shape[0]
    x_rep = jnp.tile(x0, (k,) + (1,) * (x0.ndim - 1))                       # class-major: rows c*B .. c*B+B-1
    labels = jnp.repeat(jnp.arange(k, dtype=jnp.int32), b)
    model = parameterisation.model_fn(ddpm.schedule, ddpm.prediction, ddpm.network_fn(params, {"label": labels}))

    def body(i, acc):
      noise = jax.random.normal(jax.random.fold_in(base, i), x0.shape)        # shared by every class
      t = jnp.full((k * b,), ts[i], jnp.int32)
      noise_rep = jnp.tile(noise, (k,) + (1,) * (x0.ndim - 1))
      if score == "eps_mse":
        eps, _ = model(gaussian.q_sample(ddpm.schedule, x_rep, t, noise_rep), t)
        return acc + jnp.sum(jnp.square(eps - noise_rep), axis=tuple(range(1, x0.ndim)))
      return acc + vlb.vlb_term(ddpm.schedule, model, x_rep, t, noise_rep, variance=ddpm.variance)

    bound = jax.lax.fori_loop(0, ts.shape[0], body, jnp.zeros((k * b,), jnp.float32)) * scale
    prior = log_prior[None, :] if score == "elbo" else 0.0
    scores = prior - bound.reshape(k, b).T
    return jnp.argmax(scores, axis=1), scores
  return lambda images: classify(params, images)
