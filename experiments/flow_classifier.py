r"""A generative classifier from a class-conditional Glow: y* = argmax_y log p(x | y) + log p(y).

The flow has a class-dependent prior p(z | y) (a learned mean and log-scale per class for every latent part);
classification is Bayes' rule over its exact likelihoods. A plain MLP classifier with about as many parameters,
trained on the same pixels, is the discriminative baseline.

COMMAND (offline, digits; a few minutes on 2 CPU cores):
  python -m experiments.flow_classifier --config=experiments/flow_classifier.py:quick --workdir=workdirs/flow_classifier
CI check:
  python -m experiments.flow_classifier --config=experiments/flow_classifier.py:smoke --workdir=/tmp/flow_cls_smoke
'paper' trains the class-conditional CIFAR-10 Glow of experiments/glow_cifar.py (Glow's `ycond`; the paper
reports no accuracy for it; generative classifiers are far below discriminative ones on CIFAR-10).

EXPECTED
  workdir/classifier.json and metrics.jsonl: test/classifier_accuracy beside test/mlp_accuracy on the 300
  held-out digits, and test/bits_per_dim of log p(x | y). docs/flows.md has the figures measured here.
"""
from __future__ import annotations

import ml_collections

from experiments import glow_cifar

PRESETS = glow_cifar.PRESETS


def get_config(preset: str = "paper") -> ml_collections.ConfigDict:
  c = glow_cifar.get_config(preset)
  c.model.num_classes = 10
  c.baseline = dict(steps=3000 if c.preset != "smoke" else 20)
  c.evals = ("flow_heldout", "flow_figures", "flow_classifier")
  if c.preset == "quick":
    c.figures.temperatures = (0.7,)     # glow_cifar's quick model with the class prior (2000 steps)
  return c


if __name__ == "__main__":
  from jaxgen.train import cli
  cli.main(__file__)
