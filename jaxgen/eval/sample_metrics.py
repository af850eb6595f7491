"""Sample-based metrics of a run in a feature space: draw samples in resumable chunks, embed them, compare them
with a data split's reference features.

Feature spaces: 'digits' and 'shapes' (jaxgen.eval.feature_net, offline). The reference of a split holds every
example's features (uint8 as stored, no dequantisation, no dropped remainder), their mean and covariance, and
a fingerprint of the data and the network; it is cached beside the feature network.
Metrics ('samples/...'): fid, kid (and kid_std), precision, recall (k=3), and inception_score (+ _std, 10
splits) from the network's class head where it has one ('label': digits); for conditional models asked for
classes, label_accuracy (the network's label equals the asked class).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Dict, Optional

import numpy as np

from jaxgen.eval import metrics

FEATURE_SPACES = ("digits", "shapes")


def feature_space_for(data_name: str) -> str:
  space = {"digits": "digits", "shapes": "shapes", "shapes_tiny": "shapes"}.get(data_name)
  if space is None:
    raise ValueError(f"no offline feature space for data set {data_name!r} (offline spaces: "
                     f"{', '.join(FEATURE_SPACES)}); Inception-based FID for CIFAR-10 is not part of jaxgen yet")
  return space


def reference(config, feature_net, split: str = "train") -> Dict[str, np.ndarray]:
  """Features, mean and covariance of every example of `split` (cached beside the feature network)."""
  from jaxgen.data import load_split
  from jaxgen.eval.feature_net import cache_dir
  path = os.path.join(cache_dir(feature_net.name, config.data.get("data_dir")), f"reference_{config.data.name}_{split}.npz")
  if os.path.exists(path):
    with np.load(path) as z:
      return dict(z)
  images = load_split(config, split)["image"]
  feats = feature_net.features(images)
  mu, cov = metrics.gaussian_stats(feats)
  data_hash = hashlib.sha256(images.tobytes()).hexdigest()[:16]
  net_hash = hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in _leaves(feature_net.params))).hexdigest()[:16]
  out = {"features": feats, "mu": mu, "sigma": cov, "num_examples": np.asarray(len(images)),
         "fingerprint": np.asarray(f"data {data_hash} net {net_hash}")}
  tmp = path + ".tmp.npz"
  np.savez(tmp, **out)
  os.replace(tmp, path)
  return out


def _leaves(tree):
  import jax
  return jax.tree.leaves(tree)


def compare(feature_net, images, ref, labels: Optional[np.ndarray] = None, prefix: str = "samples/") -> Dict[str, float]:
  feats, logits = feature_net.outputs(images)           # one pass of the network
  out = {"fid": metrics.fid(feats, ref["features"])}
  out["kid"], out["kid_std"] = metrics.kid(feats, ref["features"], num_subsets=50, subset_size=min(1000, len(feats)))
  out.update(metrics.precision_recall(ref["features"], feats, k=3))
  if "label" in logits:
    if len(logits["label"]) >= 10:
      out["inception_score"], out["inception_score_std"] = metrics.inception_score(logits["label"])
    if labels is not None:
      out["label_accuracy"] = float(np.mean(logits["label"].argmax(axis=-1) == np.asarray(labels)))
  return {prefix + k: float(v) for k, v in out.items()}


def draw_samples(family, params, num: int, directory: str, *, chunk: int = 500, seed: int = 0,
                 log=print):
  """(`num` uint8 samples, their asked labels or None): in chunks saved as directory/chunk_<i>.npz; chunks already there are kept (a killed
  evaluation resumes where it stopped). Sampled with jit over the device mesh, the chunk sharded over 'data'."""
  import jax
  from jaxgen.data.image import signed_unit_to_uint8
  from jaxgen.train import parallel
  from jaxgen.train.family import grid_labels
  os.makedirs(directory, exist_ok=True)
  mesh = parallel.make_data_mesh()
  n_dev = mesh.devices.size
  chunk = max(n_dev, chunk - chunk % n_dev)
  num_classes = getattr(family, "num_classes", 0)
  labels = grid_labels(chunk, num_classes) if num_classes else None
  cond = {"labels": labels} if num_classes else {}
  sample = jax.jit(lambda p, r: family.sample(p, r, chunk, **cond), out_shardings=parallel.batch_sharding(mesh))
  base = jax.random.fold_in(jax.random.PRNGKey(seed), 0xE7A1)
  num_chunks = -(-num // chunk)
  out, t0, fresh = [], time.perf_counter(), 0
  for i in range(num_chunks):
    path = os.path.join(directory, f"chunk_{i:05d}.npz")
    if not os.path.exists(path):
      images = signed_unit_to_uint8(parallel.fetch(sample(params, jax.random.fold_in(base, i))))
      np.savez(path + ".tmp.npz", images=images, labels=np.asarray(labels) if labels is not None else np.zeros(0))
      os.replace(path + ".tmp.npz", path)
      fresh += 1
    with np.load(path) as z:
      out.append(z["images"])
    done = min((i + 1) * chunk, num)
    rate = fresh * chunk / max(time.perf_counter() - t0, 1e-9)
    eta = (num_chunks - i - 1) * chunk / rate if fresh else 0.0
    log(f"samples {done}/{num} | {rate:.1f} img/s | ETA {int(eta // 60)}:{int(eta % 60):02d}")
  images = np.concatenate(out)[:num]
  return images, (np.tile(np.asarray(labels), num_chunks)[:num] if labels is not None else None)


def evaluate_run(workdir: str, *, num: int, chunk: int = 500, log=print) -> Dict[str, float]:
  """Sample metrics of the run in `workdir` (its latest checkpoint, EMA params) in its data set's feature space;
  written to workdir/eval/metrics.json and appended to workdir/metrics.jsonl."""
  from jaxgen.eval.feature_net import load_feature_net
  from jaxgen.train.logging import MetricWriter
  from jaxgen.train.run import load_run
  run = load_run(workdir)
  space = feature_space_for(run.config.data.name)
  net = load_feature_net(run.config)
  ref = reference(run.config, net)
  directory = os.path.join(workdir, "eval", f"step_{run.step}_n{num}")
  images, labels = draw_samples(run.family, run.params, num, directory, chunk=chunk, seed=run.config.seed, log=log)
  results = compare(net, images, ref, labels)
  record = {"step": run.step, "num_samples": num, "feature_space": space,
            "feature_net_test_accuracy": net.test_accuracy, "reference": str(ref["fingerprint"]),
            "reference_examples": int(ref["num_examples"]), "metrics": results}
  with open(os.path.join(workdir, "eval", "metrics.json"), "w") as f:
    json.dump(record, f, indent=2)
  MetricWriter(workdir, tensorboard=False).write_scalars(run.step, results)
  return record
