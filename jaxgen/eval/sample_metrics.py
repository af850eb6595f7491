"""Sample-based metrics in a feature space: FID, KID, precision/recall, Inception score, class coverage.

Feature spaces (`feature_space_for(data name)`):
  digits, shapes  the offline feature networks (jaxgen.eval.feature_net: 128-d features, attribute heads)
  inception       the FID InceptionV3 (jaxgen.eval.inception: 2048-d pool features, 1008 logits), for cifar10;
                  its weights are converted once from pytorch-fid's file (see docs/evaluation.md)
The reference of a data split holds the mean and covariance of every example's features (uint8 as stored, no
dequantisation, no dropped remainder), the features themselves (all of them, or a fixed 10,000 when they would
take more than 100 MB) for KID and precision/recall, and a fingerprint of the data and the network; it is cached
in the network's cache directory under a name that includes the data's hash.

Metrics ('samples/...'): fid (against the reference's full mean/covariance), kid and kid_std, precision and
recall (k=3), inception_score and its std (10 splits) from the class head ('label' for digits, Inception's
logits for cifar10), classes_covered (classes holding >= 2% of the samples, digits), and for conditional models
the agreement of the samples with what their conditions asked for, with its chance level
(jaxgen.eval.agreement: label_accuracy, attr_*). A conditional run's conditions are those of the held-out
split's examples, in order (`eval_conditions`), unless a command asks for a label or captions.

Two users: `evaluate_run` (experiments.evaluate: N samples of a finished run in resumable chunks under
workdir/eval/) and `make_sample_eval` (the trainer's 'sample_metrics' evaluation: config.eval.fid_samples
samples, the same noise at every evaluation). FID grows as N shrinks: compare numbers at the same N only.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from typing import Dict, Optional, Sequence

import numpy as np

from jaxgen.eval import metrics

FEATURE_SPACES = {"digits": "digits", "shapes": "shapes", "shapes_tiny": "shapes", "cifar10": "inception",
                  "shapes_outlined": "shapes_outlined", "shapes_outlined_tiny": "shapes_outlined"}  # CoGAN domain B
MAX_REFERENCE_FLOATS = 25_000_000          # 100 MB of float32 features; beyond, a fixed subset is stored
REFERENCE_SUBSET = 10_000
COVERAGE_FRACTION = 0.02
SAMPLE_SEED = 0xE7A1


def feature_space_for(data_name: str) -> str:
  space = FEATURE_SPACES.get(data_name)
  if space is None:
    raise ValueError(f"no feature space for data set {data_name!r}; sample metrics are defined for: "
                     f"{', '.join(sorted(FEATURE_SPACES))}")
  return space


class InceptionSpace:
  """The FID Inception as a feature space: outputs(uint8 images) -> (pool (N, 2048), {'inception': logits})."""
  name = "inception"

  def __init__(self, params, cache: str, batch_size: int = 100):
    self.params, self.cache, self.batch_size = params, cache, batch_size
    self.test_accuracy: Dict[str, float] = {}

  @functools.cached_property
  def _jitted(self):
    import jax
    from jaxgen.eval.inception import inception_features
    return jax.jit(inception_features)

  def outputs(self, images, *, progress: Optional[str] = None, log=None):
    """Padded batches of batch_size (jaxgen.eval.feature_net.padded_outputs): one compiled shape for any number
    of images (an Inception compile costs tens of seconds on a CPU); the network is in inference mode, so each
    image's features are its own. `progress`: the pass's name in progress lines."""
    from jaxgen.eval.feature_net import padded_outputs

    def apply(batch):
      f, lg = self._jitted(self.params, batch)
      return f, {"inception": lg}
    return padded_outputs(apply, images, self.batch_size, progress=progress, log=log)


def load_feature_space(config):
  """The feature space of config.data.name: an offline feature network (trained and cached on first use) or the
  FID Inception (FileNotFoundError with instructions when its converted weights are missing)."""
  from jaxgen.eval.feature_net import cache_root, load_feature_net
  space = feature_space_for(config.data.name)
  if space != "inception":
    return load_feature_net(config)
  from jaxgen.eval.inception import load_inception_params
  path = config.get("eval", {}).get("inception_weights") if "eval" in config else None
  return InceptionSpace(load_inception_params(path), os.path.join(cache_root(config.data.get("data_dir")),
                                                                  "inception-2015-12-05"))


def _params_hash(params) -> str:
  import jax
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(params):
    h.update(np.asarray(leaf).tobytes())
  return h.hexdigest()[:16]


def reference(config, space, split: str = "train", *, log=None) -> Dict[str, np.ndarray]:
  """Mean, covariance and features of every example of `split` in `space` (cached; see the module doc)."""
  from jaxgen.data import load_split
  images = load_split(config, split)["image"]
  data_hash = hashlib.sha256(images.tobytes()).hexdigest()[:16]
  path = os.path.join(space.cache, f"reference_{config.data.name}_{split}_{data_hash}.npz")
  if os.path.exists(path):
    with np.load(path) as z:
      return dict(z)
  feats, _ = space.outputs(images, progress=f"reference features of {config.data.name}/{split}", log=log)
  mu, sigma = metrics.gaussian_stats(feats)
  kept = feats
  if feats.size > MAX_REFERENCE_FLOATS:
    kept = feats[np.sort(np.random.default_rng(0).choice(len(feats), REFERENCE_SUBSET, replace=False))]
  out = {"features": kept, "mu": mu, "sigma": sigma, "num_examples": np.asarray(len(images)),
         "fingerprint": np.asarray(f"{config.data.name}/{split}: {len(images)} examples, data sha256 {data_hash}; "
                                   f"{space.name} network sha256 {_params_hash(space.params)}"),
         "path": np.asarray(path)}
  os.makedirs(space.cache, exist_ok=True)
  tmp = f"{path}.tmp{os.getpid()}.npz"             # per process: concurrent commands may build the same one
  np.savez(tmp, **out)
  os.replace(tmp, path)
  return out


def compare(space, images, ref, asked: Optional[Dict[str, np.ndarray]] = None, prefix: str = "samples/", *,
            progress: Optional[str] = None, log=None) -> Dict[str, float]:
  """Metrics of `images` (uint8 or [-1, 1]) against the reference `ref`; `asked`: what their conditions asked
  for (jaxgen.eval.agreement.asked_targets), graded by the space's attribute heads. `progress`: the feature
  pass's name in progress lines (to `log`; None: silent)."""
  from jaxgen.eval.agreement import agreement
  feats, logits = space.outputs(images, progress=progress, log=log)           # one pass of the network
  mu, sigma = metrics.gaussian_stats(feats)
  out = {"fid": metrics.frechet_distance(mu, sigma, ref["mu"], ref["sigma"])}
  real = ref["features"]
  out["kid"], out["kid_std"] = metrics.kid(feats, real, num_subsets=50, subset_size=min(1000, len(feats), len(real)))
  out.update(metrics.precision_recall(real, feats, k=3))
  head = logits.get("label", logits.get("inception"))
  if head is not None and len(head) >= 10:
    # The 10 splits must each be a fair draw: a conditional model's samples come in runs of one class.
    order = np.random.default_rng(0).permutation(len(head))
    out["inception_score"], out["inception_score_std"] = metrics.inception_score(head[order])
  if "label" in logits:
    pred = logits["label"].argmax(axis=-1)
    counts = np.bincount(pred, minlength=logits["label"].shape[-1])
    out["classes_covered"] = float(np.sum(counts >= COVERAGE_FRACTION * len(pred)))
  if asked and getattr(space, "name", None) in ("digits", "shapes", "shapes_tiny"):
    out.update(agreement(space.name, logits, asked))
  return {prefix + k: float(v) for k, v in out.items()}


def baselines(config, num: int, *, log=None) -> Dict:
  """The floor and the ceiling of the metrics in config.data.name's feature space at `num` samples: held-out
  real examples (the first `num` of the eval split) against the training split, and uniform pixel noise."""
  from jaxgen.data import load_split
  from jaxgen.data.specs import get_dataset_spec
  space = load_feature_space(config)
  ref = reference(config, space, "train", log=log)
  held_out = load_split(config, get_dataset_spec(config.data.name).eval_split)
  real = held_out["image"][:num]
  noise = np.random.default_rng(0).integers(0, 256, (len(real),) + real.shape[1:], dtype=np.uint8)
  from jaxgen.eval.agreement import asked_targets
  asked = asked_targets(config.data.name, {k: v[:num] for k, v in held_out.items()}, ("label", "tokens"))
  return {"data": config.data.name, "num": len(real), "feature_space": feature_space_for(config.data.name),
          "feature_net_test_accuracy": space.test_accuracy, "reference": str(ref["fingerprint"]),
          "held_out_real": compare(space, real, ref, asked, prefix="", progress="features of held-out images", log=log),
          "uniform_noise": compare(space, noise, ref, prefix="", progress="features of uniform noise", log=log)}


def eval_conditions(config, family, num: int, *, label: Optional[int] = None,
                    captions: Optional[Sequence[str]] = None):
  """(conditions of `num` samples as numpy arrays, or None; what they ask for, for jaxgen.eval.agreement).

  Unconditional family: (None, None), and a label or captions are refused. `label`: every sample of that
  class. `captions`: tokenised with the data set's tokenizer, cycled over the samples. Otherwise the
  conditions of the held-out split's examples in order (cycled when num exceeds the split)."""
  from jaxgen.data import load_split
  from jaxgen.data.specs import get_dataset_spec
  from jaxgen.eval.agreement import asked_targets
  features = tuple(getattr(family, "cond_features", ()))
  what = f"the {config.family!r} run" if "family" in config else "the run"
  if label is not None or captions:
    need = "label" if label is not None else "tokens"
    flag = "--label" if label is not None else "--caption/--captions"
    if need not in features:
      raise ValueError(f"{flag}: {what} takes no {'class label' if need == 'label' else 'caption'} "
                       f"(its conditions: {', '.join(features) or 'none, it is unconditional'})")
    if label is not None:
      k = getattr(family, "num_classes", 0)
      if not 0 <= label < k:
        raise ValueError(f"--label={label} must lie in [0, {k})")
      cond = {"label": np.full((num,), label, np.int32)}
      return cond, {"label": cond["label"]} if set(features) == {"label"} else None
    tokens = np.stack([tokenize(config.data.name, c) for c in captions])
    idx = np.arange(num) % len(tokens)
    return {"tokens": tokens[idx]}, None
  if not features:
    return None, None
  spec = get_dataset_spec(config.data.name)
  split = load_split(config, spec.eval_split)
  missing = [f for f in features if f not in split]
  if missing:
    raise ValueError(f"{what} is conditioned on {features}, but {spec.name}/{spec.eval_split} has no {missing}")
  idx = np.arange(num) % len(next(iter(split.values())))
  cond = {f: np.asarray(split[f])[idx] for f in features}
  cond = {k: v.astype(np.int32) if k in ("label", "tokens") else v for k, v in cond.items()}
  return cond, asked_targets(spec.name, {k: np.asarray(v)[idx] for k, v in split.items()}, features) or None


def tokenize(data_name: str, text: str) -> np.ndarray:
  """A caption as the data set's token ids (the `shapes` word vocabulary)."""
  if data_name not in ("shapes", "shapes_tiny"):
    raise ValueError(f"data set {data_name!r} has no captions to tokenise")
  from jaxgen.data.builders.shapes import tokenize as shapes_tokenize
  return shapes_tokenize(text)


def make_sampler(family, chunk: int, options: Optional[dict] = None):
  """(sample(params, rng, cond) -> `chunk` uint8 images (or float points), chunk): jit over the device mesh,
  the chunk (and its conditions) sharded over 'data' (rounded to a multiple of the device count); `options` go
  to family.sample (e.g. a flow's temperature, a diffusion model's sampler)."""
  import jax
  from jaxgen.data.image import signed_unit_to_uint8
  from jaxgen.train import parallel
  mesh = parallel.make_data_mesh()
  n_dev = mesh.devices.size
  chunk = max(n_dev, chunk - chunk % n_dev)
  fn = jax.jit(lambda p, r, c: family.sample(p, r, chunk, c, **(options or {})),
               in_shardings=(None, None, parallel.batch_sharding(mesh)), out_shardings=parallel.batch_sharding(mesh))
  points = len(getattr(family, "event_shape", getattr(family, "data_shape", (0, 0, 0)))) == 1

  def sample(params, rng, cond=None):
    out = parallel.fetch(fn(params, rng, cond))
    return np.asarray(out, np.float32) if points else signed_unit_to_uint8(out)
  return sample, chunk


def _chunk_cond(cond, i: int, chunk: int):
  """The conditions of chunk i (wrapping around at the end)."""
  if cond is None:
    return None
  n = len(next(iter(cond.values())))
  idx = (np.arange(i * chunk, (i + 1) * chunk)) % n
  return {k: v[idx] for k, v in cond.items()}


def draw_samples(family, params, num: int, directory: str, *, chunk: int = 500, seed: int = 0,
                 options: Optional[dict] = None, cond: Optional[Dict[str, np.ndarray]] = None, log=None):
  """`num` samples (uint8 images, or float points) for the conditions `cond` (numpy arrays of leading axis
  num, or None), in chunks saved as directory/chunk_<i>.npz; chunks already there are kept (a killed
  evaluation resumes where it stopped). The wall time of the fresh chunks (the first one includes compiling)
  is in `draw_samples.last_timing`. Progress lines ('samples 500/2000 (25%) | 41.2 img/s | ETA 0:36') go to
  `log` (default: stderr, jaxgen.train.logging.print_progress)."""
  import jax
  from jaxgen.train.logging import TaskProgress
  os.makedirs(directory, exist_ok=True)
  sample, chunk = make_sampler(family, chunk, options)
  base = jax.random.fold_in(jax.random.PRNGKey(seed), SAMPLE_SEED)
  num_chunks = -(-num // chunk)
  points = len(getattr(family, "event_shape", getattr(family, "data_shape", (0, 0, 0)))) == 1
  have = sum(os.path.exists(os.path.join(directory, f"chunk_{i:05d}.npz")) for i in range(num_chunks))
  bar = TaskProgress(num, "samples", "ex" if points else "img", log=log,
                     note=f"chunks of {chunk}" + (f", {have} already drawn" if have else "") +
                     ("; the first compiles" if have < num_chunks else ""))
  out, t0, fresh = [], time.perf_counter(), 0
  for i in range(num_chunks):
    path = os.path.join(directory, f"chunk_{i:05d}.npz")
    n = min(chunk, num - i * chunk)
    if not os.path.exists(path):
      images = sample(params, jax.random.fold_in(base, i), _chunk_cond(cond, i, chunk))
      np.savez(path + ".tmp.npz", images=images)
      os.replace(path + ".tmp.npz", path)
      fresh += 1
      bar.update(n)
    else:
      bar.skip(n)
      if bar.done >= num:
        bar.update(0)                    # every chunk was there: the last line still comes
    with np.load(path) as z:
      out.append(z["images"])
  draw_samples.last_timing = {"fresh_chunks": fresh, "chunk": chunk, "seconds": time.perf_counter() - t0}
  return np.concatenate(out)[:num]


def make_sample_eval(config, family, workdir=None):
  """The trainer's 'sample_metrics' evaluation: eval_fn(state, step) -> the metrics of config.eval.fid_samples
  EMA samples (the same noise at every evaluation) against the training split. Where the feature space cannot
  be had (Inception weights missing), one warning says why and training goes on without it."""
  import jax
  num = int(config.eval.fid_samples)
  try:
    space = load_feature_space(config)
  except FileNotFoundError as e:
    print(f"warning: the 'sample_metrics' evaluation is skipped: {e}", flush=True)
    return lambda state, step: {}
  ref = reference(config, space)
  options = dict(config.eval.get("sample_options") or {})
  sample, chunk = make_sampler(family, min(num, config.eval.batch_size), options)
  cond, asked = eval_conditions(config, family, num)
  base = jax.random.fold_in(jax.random.PRNGKey(config.seed), SAMPLE_SEED)
  num_chunks = -(-num // chunk)

  def eval_fn(state, step):
    from jaxgen.train.logging import TaskProgress
    bar = TaskProgress(num, "samples", "img", note=f"chunks of {chunk}; the first may compile")
    images = []
    for i in range(num_chunks):
      images.append(sample(state.ema_params, jax.random.fold_in(base, i), _chunk_cond(cond, i, chunk)))
      bar.update(min(chunk, num - i * chunk))
    return compare(space, np.concatenate(images)[:num], ref, asked, progress="features of the samples")
  return eval_fn


def evaluate_run(workdir: str, *, num: int, chunk: int = 500, sample_options: Optional[dict] = None,
                 inception_weights: Optional[str] = None, label: Optional[int] = None,
                 captions: Optional[Sequence[str]] = None, log=print) -> Dict:
  """Sample metrics of the run in `workdir` (its latest checkpoint, EMA params) in its data set's feature space;
  written to workdir/eval/metrics.json, appended to workdir/eval/metrics.jsonl (one record per evaluation)
  and to the run's workdir/metrics.jsonl (the metrics at the checkpoint's step)."""
  from jaxgen.train.logging import MetricWriter
  from jaxgen.train.run import load_run
  # The run's own training evaluations are not needed here (and may name evaluations this version lacks).
  from jaxgen import registry
  run = load_run(workdir, overrides={"evals": ()})
  registry.apply_sample_options(run.config, dict(sample_options or {}))   # the family's rules, before sampling
  space_name = feature_space_for(run.config.data.name)
  if inception_weights:
    run.config.eval.inception_weights = inception_weights
  space = load_feature_space(run.config)
  ref = reference(run.config, space, log=log)
  options = dict(run.config.get("eval", {}).get("sample_options") or {})
  options.update(sample_options or {})
  cond, asked = eval_conditions(run.config, run.family, num, label=label, captions=captions)
  tag = "".join(f"_{k}{v:g}" if isinstance(v, float) else f"_{k}{v}" for k, v in sorted(options.items()))
  if label is not None:
    tag += f"_label{label}"
  if captions:
    tag += "_captions" + hashlib.sha256("\n".join(captions).encode()).hexdigest()[:8]
  directory = os.path.join(workdir, "eval", f"step_{run.step}_n{num}{tag}")
  images = draw_samples(run.family, run.params, num, directory, chunk=chunk, seed=run.config.seed,
                        options=options, cond=cond, log=log)
  timing = draw_samples.last_timing
  results = compare(space, images, ref, asked, progress="features of the samples", log=log)
  record = {"step": run.step, "num_samples": num, "feature_space": space_name, "sample_options": options,
            "conditions": ("held-out split" if cond is not None and label is None and not captions else
                           f"label {label}" if label is not None else f"{len(captions)} caption(s)" if captions
                           else None),
            "sampling_seconds": round(timing["seconds"], 2) if timing["fresh_chunks"] == -(-num // timing["chunk"])
            else None,                                                    # None: resumed from saved chunks
            "feature_net_test_accuracy": space.test_accuracy, "reference": str(ref["fingerprint"]),
            "reference_examples": int(ref["num_examples"]), "metrics": results}
  with open(os.path.join(workdir, "eval", "metrics.json"), "w") as f:
    json.dump(record, f, indent=2)
  with open(os.path.join(workdir, "eval", "metrics.jsonl"), "a") as f:      # every evaluation of the run
    f.write(json.dumps(record) + "\n")
  MetricWriter(workdir, tensorboard=False).write_scalars(run.step, results)
  return record
