"""A generative classifier from a class-conditional flow, by Bayes' rule.

  log p(y | x) = log p(x | y) + log p(y) - logsumexp_y' [log p(x | y') + log p(y')]
  y* = argmax_y log p(x | y) + log p(y)
log p(x | y) is the flow's exact log-density of the image at the centres of its 8-bit bins (x + 1/2, no
dequantisation noise), so the decision is deterministic.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def class_log_posteriors(log_likelihoods, log_prior):
  """(B, K) log p(x|y) and (K,) log p(y) -> (B, K) log p(y|x)."""
  joint = jnp.asarray(log_likelihoods, jnp.float32) + jnp.asarray(log_prior, jnp.float32)
  return joint - jax.scipy.special.logsumexp(joint, axis=1, keepdims=True)


def bayes_classify(log_likelihoods, log_prior):
  """y* = argmax_y log p(x|y) + log p(y), (B,) int32."""
  return jnp.argmax(jnp.asarray(log_likelihoods) + jnp.asarray(log_prior), axis=1).astype(jnp.int32)


def empirical_log_prior(labels, num_classes: int):
  """log of the class frequencies of the training labels (every class must occur)."""
  counts = jnp.bincount(jnp.asarray(labels), length=num_classes).astype(jnp.float32)
  if bool(jnp.any(counts == 0)):
    raise ValueError(f"class counts {counts.tolist()}: every class needs at least one training example")
  return jnp.log(counts / counts.sum())


def make_flow_classifier(model, params, log_prior):
  """A jitted function images (B, H, W, C) uint8 -> (predicted labels (B,), log posteriors (B, K))."""
  @jax.jit
  def classify(images):
    ll = model.class_log_likelihoods(params, images)
    return bayes_classify(ll, log_prior), class_log_posteriors(ll, log_prior)
  return classify
