"""Conditioner networks for coupling layers: they compute a coupling's shift and scale from the kept half.

The last layer is zero-initialised, so a coupling starts as the identity (additive, tanh scale) or as a fixed
per-dimension scale (Glow's sigmoid(h + 2)); this keeps deep flows stable at the start of training.
No batch normalisation: held-out likelihoods must not depend on running statistics (a known pitfall of
RealNVP re-implementations whose test bits/dim exploded in eval mode).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class ConvConditioner(nn.Module):
  """conv3x3 -> relu -> conv1x1 -> relu -> `num_blocks` residual blocks -> zero-init conv3x3 to out_channels.

  With num_blocks=0 this is Glow's NN(); with num_blocks=8, features=64 it is RealNVP's residual s/t network
  (without its batch norm, see the module docstring).
  """
  features: int
  out_channels: int
  num_blocks: int = 0

  @nn.compact
  def __call__(self, x):
    h = nn.relu(nn.Conv(self.features, (3, 3), padding="SAME", name="conv_in")(x))
    h = nn.relu(nn.Conv(self.features, (1, 1), name="conv_mid")(h))
    for i in range(self.num_blocks):
      r = nn.Conv(self.features, (3, 3), padding="SAME", name=f"block{i}_conv0")(nn.relu(h))
      r = nn.Conv(self.features, (3, 3), padding="SAME", name=f"block{i}_conv1")(nn.relu(r))
      h = h + r
    if self.num_blocks:
      h = nn.relu(h)
    return nn.Conv(self.out_channels, (3, 3), padding="SAME", kernel_init=nn.initializers.zeros,
                   name="conv_out")(h)


class MLPConditioner(nn.Module):
  """`num_layers` relu layers of width `hidden`, then a zero-initialised linear map to out_channels."""
  hidden: int
  out_channels: int
  num_layers: int = 2

  @nn.compact
  def __call__(self, x):
    h = x
    for i in range(self.num_layers):
      h = nn.relu(nn.Dense(self.hidden, name=f"dense{i}")(h))
    return nn.Dense(self.out_channels, kernel_init=nn.initializers.zeros, name="dense_out")(h)


class MLPClassifier(nn.Module):
  """A plain classifier (the discriminative baseline for the flow classifier): relu MLP -> logits."""
  hidden: int
  num_classes: int
  num_layers: int = 2

  @nn.compact
  def __call__(self, x):
    h = x.reshape(x.shape[0], -1)
    for i in range(self.num_layers):
      h = nn.relu(nn.Dense(self.hidden, name=f"dense{i}")(h))
    return nn.Dense(self.num_classes, name="logits")(h)

