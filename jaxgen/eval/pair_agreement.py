"""CoGAN's pair agreement: do the two images drawn from one latent show the same thing in their two domains?

N pairs from N latents (the EMA generator, the same noise at every evaluation), split into the domain-A half
and the domain-B half (jaxgen.nn.cogan.split_pair; a negative half is inverted back first,
jaxgen.gan.cogan.from_domain_b). Each half is classified by its domain's feature network (jaxgen.eval.feature_net:
digits -> the digit; shapes -> per quadrant the object's kind, colour and size, and the count; the outlined
half by the network trained on `shapes_outlined`, by name, cached like the others), and
  samples/pair_agreement          digits: the same digit; shapes: the same count and, in every quadrant, the same
                                  kind and colour (none = none)
  samples/pair_agreement_count / _kind / _colour (shapes): the count alone, all quadrants' kinds, all colours
each with `<name>_chance`: the same halves with the B halves in a fixed random permutation (random pairs).
Each half is also graded against its own domain (sample_metrics.compare: FID, KID, precision, recall, ... in
its feature space against the reference of its training split, as the 'sample_metrics' evaluation does):
samples/a/<metric>, samples/b/<metric>.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

CHANCE_SEED = 0xC4A          # as jaxgen.eval.agreement


def pair_matches(pred_a: Dict[str, np.ndarray], pred_b: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Per-pair booleans {metric: (N,)} from the two halves' predicted classes (feature-network heads)."""
  if "label" in pred_a:
    return {"pair_agreement": pred_a["label"] == pred_b["label"]}
  count = pred_a["count"] == pred_b["count"]
  kind = np.all([pred_a[f"q{q}_kind"] == pred_b[f"q{q}_kind"] for q in range(4)], axis=0)
  colour = np.all([pred_a[f"q{q}_colour"] == pred_b[f"q{q}_colour"] for q in range(4)], axis=0)
  return {"pair_agreement": count & kind & colour, "pair_agreement_count": count, "pair_agreement_kind": kind,
          "pair_agreement_colour": colour}


def pair_agreement(pred_a: Dict[str, np.ndarray], pred_b: Dict[str, np.ndarray]) -> Dict[str, float]:
  """The rates of `pair_matches` and, as `<name>_chance`, those of random pairs (B in a fixed permutation)."""
  n = len(next(iter(pred_b.values())))
  perm = np.random.default_rng(CHANCE_SEED).permutation(n)
  out = {k: float(np.mean(v)) for k, v in pair_matches(pred_a, pred_b).items()}
  chance = pair_matches(pred_a, {k: v[perm] for k, v in pred_b.items()})
  out.update({f"{k}_chance": float(np.mean(v)) for k, v in chance.items()})
  return out


def _domain_config(config, name: str):
  out = config.copy_and_resolve_references()
  with out.unlocked():
    out.data.name = name
  return out


def grade_pairs(spaces, refs, images, kind: str, prefix: str = "samples/") -> Dict[str, float]:
  """Metrics of uint8 pairs (N, H, 2W, C): each half against its domain (`spaces`, `refs`: A's and B's feature
  spaces and references) and the pair agreement."""
  from jaxgen.eval.sample_metrics import compare
  from jaxgen.gan.cogan import from_domain_b
  from jaxgen.nn.cogan import split_pair
  a, b = split_pair(np.asarray(images))
  halves = (a, from_domain_b(b, kind))
  out, preds = {}, []
  for d, space, ref, x in zip("ab", spaces, refs, halves):
    out.update(compare(space, x, ref, prefix=f"{prefix}{d}/", progress=f"features of the {d.upper()} halves"))
    preds.append({k: v.argmax(-1) for k, v in space.outputs(x)[1].items()})
  out.update({prefix + k: v for k, v in pair_agreement(*preds).items()})
  return out


def make_pair_agreement_eval(config, family, workdir=None):
  """The trainer's 'pair_agreement' evaluation: eval_fn(state, step) -> grade_pairs of config.eval.fid_samples
  EMA pairs (the same noise every time)."""
  import jax
  from jaxgen.eval import sample_metrics as SM
  from jaxgen.gan.cogan import domain_b, domain_b_dataset
  num, kind = int(config.eval.fid_samples), domain_b(config)
  names = (config.data.name, domain_b_dataset(config))
  spaces, refs = [], []
  for name in names:
    cfg = _domain_config(config, name)
    space = SM.load_feature_space(cfg)
    print(f"pair_agreement: the {name} feature network's held-out accuracy: " +
          ", ".join(f"{k} {v:.3f}" for k, v in space.test_accuracy.items()), flush=True)
    spaces.append(space)
    refs.append(SM.reference(cfg, space))
  sample, chunk = SM.make_sampler(family, min(num, config.eval.batch_size))
  base = jax.random.fold_in(jax.random.PRNGKey(config.seed), SM.SAMPLE_SEED)

  def eval_fn(state, step):
    images = [sample(state.ema_params, jax.random.fold_in(base, i)) for i in range(-(-num // chunk))]
    return grade_pairs(spaces, refs, np.concatenate(images)[:num], kind)
  return eval_fn
