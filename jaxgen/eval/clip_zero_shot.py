"""CLIP's zero-shot evaluation on held-out `shapes`: attributes classified from prompts, a linear probe beside
it, chance, and image<->text retrieval.

Zero-shot: each class of an attribute is described by a prompt ensemble written in the caption grammar
(jaxgen.data.builders.shapes.caption): kind k by "a {size} {colour} {k}" over every size and colour, colour c
over every size and kind, size over every colour and kind; object count n by PROMPTS_PER_COUNT captions of n
random objects in random quadrants (a fixed draw). A class's embedding is the normalised mean of its prompts'
unit-norm embeddings (OpenAI's prompt ensembling); an image's prediction is the class of highest cosine. Kind,
colour and size are scored on the single-object held-out images, count on all of them. Beside it,
`zero_shot_best_prompt_*`: the class of the single prompt of highest cosine (for kind, colour and size the
prompts are the 60 captions of one object, so this reads the attribute off the best-matching caption).
Linear probe: multinomial logistic regression on the image embeddings of the first eval.probe_train_examples
training images (the same subset rule: single-object for kind / colour / size), eval.probe_steps full-batch Adam
steps at eval.probe_learning_rate, scored on the same held-out images. Chance: 1 / number of classes.
Retrieval over the held-out split, each distinct caption once in the gallery: image->text recall@k is the
fraction of images whose caption is among the k captions nearest to them; text->image recall@k the fraction of
distinct captions with one of their images (any image captioned with that text) among the k nearest images.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

ATTRIBUTES = ("kind", "colour", "size", "count")
PROMPTS_PER_COUNT = 200
PROMPT_SEED = 0xC11B


def attribute_targets(attributes: np.ndarray) -> Dict[str, np.ndarray]:
  """{attribute: int targets} from shapes' attributes rows: count - 1, and the first object's kind, colour,
  size (meaningful for the single-object images, where it is the only object)."""
  return {"count": attributes[:, 0] - 1, "kind": attributes[:, 1] - 1, "colour": attributes[:, 2] - 1,
          "size": attributes[:, 3] - 1}


def class_prompts(attribute: str) -> List[List[str]]:
  """For each class of `attribute`, its prompts in the caption grammar."""
  from jaxgen.data.builders import shapes as S
  one = lambda k, c, s: S.caption(S.Scene(0, ((k, c, s, 0, 8, 8),)))   # noqa: E731
  kinds, colours, sizes = range(len(S.SHAPES)), range(len(S.COLOUR_NAMES)), range(len(S.SIZES))
  if attribute == "kind":
    return [[one(k, c, s) for s in sizes for c in colours] for k in kinds]
  if attribute == "colour":
    return [[one(k, c, s) for s in sizes for k in kinds] for c in colours]
  if attribute == "size":
    return [[one(k, c, s) for c in colours for k in kinds] for s in sizes]
  if attribute == "count":
    rng = np.random.default_rng(PROMPT_SEED)
    out = []
    for n in range(1, S.MAX_OBJECTS + 1):
      prompts = []
      for _ in range(PROMPTS_PER_COUNT):
        quads = sorted(rng.choice(4, n, replace=False))
        objs = tuple((int(rng.integers(len(S.SHAPES))), int(rng.integers(len(S.COLOUR_NAMES))),
                      int(rng.integers(len(S.SIZES))), int(q), 8, 8) for q in quads)
        prompts.append(S.caption(S.Scene(0, objs)))
      out.append(prompts)
    return out
  raise ValueError(f"attribute={attribute!r}; choose one of: {', '.join(ATTRIBUTES)}")


def _unit(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def ensemble_classifier(prompt_emb: np.ndarray, prompt_class: np.ndarray, num_classes: int) -> np.ndarray:
  """(K, D) class embeddings: the normalised mean of each class's unit-norm prompt embeddings (P, D)."""
  prompt_emb, prompt_class = _unit(np.asarray(prompt_emb, np.float64)), np.asarray(prompt_class)
  missing = sorted(set(range(num_classes)) - set(prompt_class.tolist()))
  if missing:
    raise ValueError(f"classes {missing} have no prompt")
  return np.stack([_unit(prompt_emb[prompt_class == k].mean(0)) for k in range(num_classes)])


def zero_shot_predict(image_emb: np.ndarray, class_emb: np.ndarray) -> np.ndarray:
  """(N,) the class of highest cosine similarity for each image embedding."""
  return np.argmax(_unit(np.asarray(image_emb, np.float64)) @ np.asarray(class_emb, np.float64).T, axis=-1)


def best_prompt_predict(image_emb: np.ndarray, prompt_emb: np.ndarray, prompt_class: np.ndarray) -> np.ndarray:
  """(N,) the class of the prompt of highest cosine similarity for each image embedding."""
  sim = _unit(np.asarray(image_emb, np.float64)) @ _unit(np.asarray(prompt_emb, np.float64)).T
  return np.asarray(prompt_class)[np.argmax(sim, axis=-1)]


def recall_at_k(similarity: np.ndarray, positives: np.ndarray, k: int) -> float:
  """Fraction of queries (rows of `similarity` (Q, G)) with a positive (`positives` (Q, G) boolean) among their
  k most similar gallery items (ties broken by the lower index)."""
  if similarity.shape != positives.shape:
    raise ValueError(f"similarity {similarity.shape} and positives {positives.shape} differ in shape")
  top = np.argsort(-similarity, axis=-1, kind="stable")[:, :k]
  return float(np.mean(np.take_along_axis(positives, top, axis=-1).any(-1)))


def retrieval_metrics(image_emb: np.ndarray, text_emb: np.ndarray, tokens: np.ndarray,
                      ks: Tuple[int, ...] = (1, 5)) -> Dict[str, float]:
  """Image->text and text->image recall@k, each distinct caption (token row) once in the text gallery;
  text_emb (N, D) are the embeddings of the N images' captions (copies of a caption have equal embeddings)."""
  unique, first, inverse = np.unique(tokens, axis=0, return_index=True, return_inverse=True)
  inverse = inverse.reshape(-1)
  sim = np.asarray(image_emb, np.float64) @ np.asarray(text_emb, np.float64)[first].T    # (N images, U texts)
  positives = inverse[:, None] == np.arange(len(unique))[None, :]
  out = {}
  for k in ks:
    out[f"retrieval_i2t_r{k}"] = recall_at_k(sim, positives, k)
    out[f"retrieval_t2i_r{k}"] = recall_at_k(sim.T, positives.T, k)
  out["num_distinct_captions"] = float(len(unique))
  return out


def linear_probe(train_x, train_y, test_x, num_classes: int, *, steps: int, learning_rate: float,
                 seed: int = 0) -> np.ndarray:
  """Predictions on test_x of a multinomial logistic regression fitted to (train_x, train_y) by `steps`
  full-batch Adam steps (features standardised with the training mean and deviation)."""
  import jax
  import jax.numpy as jnp
  import optax
  mean, std = train_x.mean(0), train_x.std(0) + 1e-6
  x, y = jnp.asarray((train_x - mean) / std, jnp.float32), jnp.asarray(train_y)
  params = {"w": jax.random.normal(jax.random.PRNGKey(seed), (x.shape[1], num_classes)) * 0.01,
            "b": jnp.zeros((num_classes,))}
  tx = optax.adam(learning_rate)

  def loss(p):
    return optax.softmax_cross_entropy_with_integer_labels(x @ p["w"] + p["b"], y).mean()

  @jax.jit
  def fit(params):
    def step(_, carry):
      p, s = carry
      u, s = tx.update(jax.grad(loss)(p), s, p)
      return optax.apply_updates(p, u), s
    return jax.lax.fori_loop(0, steps, step, (params, tx.init(params)))[0]

  p = fit(params)
  logits = jnp.asarray((test_x - mean) / std, jnp.float32) @ p["w"] + p["b"]
  return np.asarray(jnp.argmax(logits, -1))


def make_clip_zero_shot_eval(config, family, workdir=None):
  """eval_fn(state, step): the zero-shot, probe, chance and retrieval metrics of the module docstring, with the
  trained params (eval.use_ema: the EMA params)."""
  from jaxgen.clip.api import encode_images, encode_text, tokenize
  from jaxgen.data import load_heldout, load_split
  e = config.eval
  test = load_heldout(config)
  train = {k: v[:e.probe_train_examples] for k, v in load_split(config, "train").items()}
  y_test, y_train = attribute_targets(test["attributes"]), attribute_targets(train["attributes"])
  single_test, single_train = test["attributes"][:, 0] == 1, train["attributes"][:, 0] == 1
  prompts = {a: class_prompts(a) for a in ATTRIBUTES}

  def eval_fn(state, step):
    from jaxgen.train.logging import TaskProgress
    params = state.ema_params if e.get("use_ema", False) else state.params
    stages = TaskProgress(len(prompts) + 2, "clip zero-shot", quiet_start=True)    # a line as each stage starts
    stages.stage(f"encoding {len(test['image'])} held-out and {len(train['image'])} training images")
    enc = lambda x: encode_images(family, x, params, e.batch_size)   # noqa: E731
    img_test, img_train = enc(test["image"]), enc(train["image"])
    out = {"num_single_object": float(single_test.sum())}
    for a, per_class in prompts.items():
      flat = [p for ps in per_class for p in ps]
      stages.stage(f"{a}: {len(flat)} prompts, zero-shot and a linear probe ({e.probe_steps} steps)")
      cls = np.repeat(np.arange(len(per_class)), [len(ps) for ps in per_class])
      txt = encode_text(family, tokenize(flat), params, e.batch_size)
      te, tr = (np.ones_like(single_test), np.ones_like(single_train)) if a == "count" else (single_test, single_train)
      pred = zero_shot_predict(img_test[te], ensemble_classifier(txt, cls, len(per_class)))
      out[f"zero_shot_{a}_accuracy"] = float(np.mean(pred == y_test[a][te]))
      best = best_prompt_predict(img_test[te], txt, cls)
      out[f"zero_shot_best_prompt_{a}_accuracy"] = float(np.mean(best == y_test[a][te]))
      probe = linear_probe(img_train[tr], y_train[a][tr], img_test[te], len(per_class), steps=e.probe_steps,
                           learning_rate=e.probe_learning_rate)
      out[f"probe_{a}_accuracy"] = float(np.mean(probe == y_test[a][te]))
      out[f"{a}_chance"] = 1.0 / len(per_class)
    stages.stage(f"retrieval over {len(test['tokens'])} held-out captions")
    out.update(retrieval_metrics(img_test, encode_text(family, test["tokens"], params, e.batch_size), test["tokens"]))
    return {f"test/{k}": v for k, v in out.items()}
  return eval_fn
