"""A plain discriminative baseline: an MLP classifier trained by cross-entropy with AdamW on random minibatches."""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax


def hidden_width_for(num_params: int, in_dim: int, num_classes: int, num_layers: int = 2) -> int:
  """The MLP width whose parameter count is closest to `num_params` (in -> h -> ... -> h -> classes)."""
  best, best_gap = 1, None
  for h in range(1, 4096):
    n = in_dim * h + h + (num_layers - 1) * (h * h + h) + h * num_classes + num_classes
    gap = abs(n - num_params)
    if best_gap is None or gap < best_gap:
      best, best_gap = h, gap
  return best


def train_mlp_classifier(x_train, y_train, x_test, y_test, *, hidden: int, num_classes: int, steps: int = 2000,
                         batch_size: int = 128, learning_rate: float = 1e-3, weight_decay: float = 1e-4,
                         seed: int = 0, progress: Optional[str] = None) -> dict:
  """Train on (x_train, y_train) (pixels in [0, 1]); returns test accuracy and the parameter count. `progress`:
  the training's name in progress lines (None: silent)."""
  from jaxgen.eval.minibatch import fit_by_minibatches
  from jaxgen.nn.conditioners import MLPClassifier
  from jaxgen.nn.unet import count_params
  net = MLPClassifier(hidden, num_classes)
  x_train, x_test = np.asarray(x_train, np.float32), np.asarray(x_test, np.float32)
  params = net.init(jax.random.PRNGKey(seed), x_train[:1])["params"]

  def loss(p, batch):
    return optax.softmax_cross_entropy_with_integer_labels(net.apply({"params": p}, batch["x"]), batch["y"]).mean()

  params = fit_by_minibatches(loss, params, optax.adamw(learning_rate, weight_decay=weight_decay),
                              {"x": x_train, "y": np.asarray(y_train)}, steps=steps, batch_size=batch_size, seed=seed,
                              progress=progress)
  pred = np.asarray(jnp.argmax(net.apply({"params": params}, x_test), axis=1))
  return {"test_accuracy": float(np.mean(pred == np.asarray(y_test))), "num_params": count_params(params)}
