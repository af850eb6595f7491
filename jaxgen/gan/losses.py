"""GAN losses on discriminator logits, each as a discriminator loss and a generator loss (means over the batch).

  non_saturating  D: softplus(-D(x)) + softplus(D(G(z)))  [= -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))]
                  G: softplus(-D(G(z)))                    [= -log sigmoid(D(G(z))), Goodfellow et al. 2014, sec. 3]
  minimax         D: as non_saturating;  G: -softplus(D(G(z)))  [= log(1 - sigmoid(D(G(z)))), the minimax game]
  hinge           D: relu(1 - D(x)) + relu(1 + D(G(z)));  G: -D(G(z))     (Lim & Ye 2017; Miyato et al. 2018)
  wgan            D: D(G(z)) - D(x);  G: -D(G(z))   (Arjovsky et al. 2017; with a gradient penalty: WGAN-GP)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

LOSSES = ("non_saturating", "minimax", "hinge", "wgan")


def check_loss(name: str) -> None:
  if name not in LOSSES:
    raise ValueError(f"unknown GAN loss {name!r}; choose one of: {', '.join(LOSSES)}")


def discriminator_loss(name: str, real_logits, fake_logits):
  """(loss, {'d_loss_real', 'd_loss_fake'}) for the discriminator."""
  check_loss(name)
  r, f = real_logits.astype(jnp.float32), fake_logits.astype(jnp.float32)
  if name in ("non_saturating", "minimax"):
    lr, lf = jnp.mean(jax.nn.softplus(-r)), jnp.mean(jax.nn.softplus(f))
  elif name == "hinge":
    lr, lf = jnp.mean(jax.nn.relu(1.0 - r)), jnp.mean(jax.nn.relu(1.0 + f))
  else:
    lr, lf = -jnp.mean(r), jnp.mean(f)
  return lr + lf, {"d_loss_real": lr, "d_loss_fake": lf}


def generator_loss(name: str, fake_logits):
  check_loss(name)
  f = fake_logits.astype(jnp.float32)
  if name == "non_saturating":
    return jnp.mean(jax.nn.softplus(-f))
  if name == "minimax":
    return -jnp.mean(jax.nn.softplus(f))
  return -jnp.mean(f)
