"""Conditions as a pytree (jaxgen.conditions), classifier-free guidance for any condition
(jaxgen.diffusion.guidance) and the agreement of conditional samples with what was asked
(jaxgen.eval.agreement), against direct computations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import conditions
from jaxgen.diffusion.guidance import guided_model_fn
from jaxgen.eval import agreement

NULLS = {"label": 10, "tokens": 0, "embedding": 0.0}


def _cond(b=20_000):
  return {"label": jnp.full((b,), 3, jnp.int32), "tokens": jnp.full((b, 5), 7, jnp.int32),
          "embedding": jnp.ones((b, 4), jnp.float32)}


def test_drop_replaces_whole_examples_at_the_rate_for_every_kind_of_condition():
  out = conditions.drop(_cond(), jax.random.PRNGKey(0), 0.3, NULLS)
  dropped = np.asarray(out["label"] == 10)
  assert abs(dropped.mean() - 0.3) < 0.01
  # one draw per example: every feature of an example is dropped together, and to its null value
  np.testing.assert_array_equal(np.all(np.asarray(out["tokens"]) == 0, axis=1), dropped)
  np.testing.assert_array_equal(np.all(np.asarray(out["embedding"]) == 0, axis=1), dropped)
  np.testing.assert_array_equal(np.all(np.asarray(out["tokens"]) == 7, axis=1), ~dropped)
  assert conditions.drop(None, jax.random.PRNGKey(0), 0.3, NULLS) is None
  assert conditions.drop(_cond(8), jax.random.PRNGKey(0), 0.0, NULLS)["label"].tolist() == [3] * 8


def test_check_cond_names_what_is_wrong():
  with pytest.raises(ValueError, match=r"conditioned on \('tokens',\) but was given \['label'\]"):
    conditions.check_cond({"label": jnp.zeros(2)}, ("tokens",), 2)
  with pytest.raises(ValueError, match="is unconditional"):
    conditions.check_cond({"label": jnp.zeros(2)}, (), 2)


def test_check_features_message():
  with pytest.raises(ValueError, match=r"cond_features has \['colour'\]; conditions are made of: label, tokens"):
    conditions.check_features(("label", "colour"))


def test_guidance_on_token_and_embedding_conditions_equals_the_direct_formula():
  """eps(x, c) depends on the caption tokens and an embedding; guided = (1 + w) eps(x, c) - w eps(x, null)."""
  def model(x, t, c):
    shift = jnp.sum(c["tokens"], axis=1, keepdims=True) * 0.01 + jnp.sum(c["embedding"], axis=1, keepdims=True)
    eps = 0.5 * x + shift
    return eps, x - eps
  cond = {"tokens": jnp.array([[1, 2, 0], [4, 0, 0]]), "embedding": jnp.array([[0.5, 0.25], [1.0, -1.0]])}
  x, t = jnp.ones((2, 3)), jnp.zeros((2,), jnp.int32)
  c_eps, _ = model(x, t, cond)
  n_eps, _ = model(x, t, conditions.null(cond, NULLS))
  for w in (0.0, 1.0, 3.0):
    eps, x0 = guided_model_fn(model, cond, NULLS, w)(x, t)
    np.testing.assert_allclose(eps, (1 + w) * c_eps - w * n_eps, rtol=1e-6)
    np.testing.assert_allclose(x0, (1 + w) * (x - c_eps) - w * (x - n_eps), rtol=1e-6)


def _shapes_logits(kinds, colours, sizes, count):
  """One-hot logits of the shapes attribute heads for given per-quadrant predictions."""
  n = len(count)
  out = {"count": np.eye(3)[np.asarray(count) - 1]}
  for q in range(4):
    out[f"q{q}_kind"] = np.eye(6)[kinds[:, q]]
    out[f"q{q}_colour"] = np.eye(7)[colours[:, q]]
    out[f"q{q}_size"] = np.eye(3)[sizes[:, q]]
  assert all(len(v) == n for v in out.values())
  return out


def test_shapes_agreement_against_a_hand_count():
  # asked: scene 0 = one object (kind 2, colour 3, size 1) in quadrant 1; scene 1 = two objects
  att = np.zeros((2, 13), np.int32)
  att[0, :5] = (1, 2, 3, 1, 1)
  att[1, :9] = (2, 1, 1, 2, 4, 5, 6, 1, 2)
  # predicted: scene 0 right kind and colour, wrong size, in another quadrant; scene 1 only its first object
  kinds = np.array([[0, 0, 2, 0], [0, 0, 0, 1]])
  colours = np.array([[0, 0, 3, 0], [0, 0, 0, 1]])
  sizes = np.array([[0, 0, 2, 0], [0, 0, 0, 2]])
  logits = _shapes_logits(kinds, colours, sizes, count=[1, 1])
  got = agreement.agreement("shapes", logits, {"attributes": att, "label": np.array([1, 0])})
  assert got["attr_count"] == 0.5                   # scene 0's count right, scene 1's wrong
  assert got["attr_kind"] == pytest.approx(2 / 3)    # 3 asked objects, 2 kinds shown
  assert got["attr_colour"] == pytest.approx(2 / 3)
  assert got["attr_size"] == pytest.approx(1 / 3)    # only scene 1's first object has its size
  assert got["attr_colour_alone"] == pytest.approx(2 / 3)   # colours 3 and 1 shown, 6 not
  assert got["label_accuracy"] == 1.0                # label = kind - 1: kind 2 shown in 0, kind 1 in 1
  assert 0 <= got["attr_quadrant_kind"] <= 1 and "attr_kind_chance" in got
  # a colour shown on the wrong kind counts for attr_colour_alone only
  wrong_kind = _shapes_logits(np.array([[0, 0, 4, 0], [0, 0, 0, 1]]), colours, sizes, count=[1, 1])
  got = agreement.agreement("shapes", wrong_kind, {"attributes": att})
  assert got["attr_colour"] == pytest.approx(1 / 3) and got["attr_colour_alone"] == pytest.approx(2 / 3)


def test_digits_label_accuracy():
  logits = {"label": np.eye(10)[[1, 2, 3, 3]]}
  got = agreement.agreement("digits", logits, {"label": np.array([1, 2, 3, 4])})
  assert got["label_accuracy"] == 0.75 and "label_accuracy_chance" in got


class _Fake:
  """Stands in for a family: only what eval_conditions reads."""
  def __init__(self, features, num_classes=0):
    self.cond_features, self.num_classes = features, num_classes


def test_eval_conditions_come_from_the_held_out_split_and_refuse_what_the_run_does_not_take(tmp_path):
  from jaxgen.data import load_split
  from jaxgen.eval.sample_metrics import eval_conditions
  from jaxgen.train.presets import base_config
  c = base_config("ddpm", "smoke")
  c.data.name = "shapes_tiny"
  held = load_split(c, "test")
  cond, asked = eval_conditions(c, _Fake(("tokens",)), 70)            # 64 held-out examples, cycled
  np.testing.assert_array_equal(cond["tokens"][:64], held["tokens"])
  np.testing.assert_array_equal(cond["tokens"][64:], held["tokens"][:6])
  np.testing.assert_array_equal(asked["attributes"][:64], held["attributes"])
  cond, asked = eval_conditions(c, _Fake(("label",), 5), 10)
  np.testing.assert_array_equal(cond["label"], held["label"][:10]) and set(asked) == {"label"}
  cond, _ = eval_conditions(c, _Fake(("tokens",)), 3, captions=["a small red circle"])
  assert cond["tokens"].shape == (3, 24) and (cond["tokens"][0] != 0).sum() == 4
  assert eval_conditions(c, _Fake(()), 5) == (None, None)
  with pytest.raises(ValueError, match=r"--label: the 'ddpm' run takes no class label \(its conditions: tokens\)"):
    eval_conditions(c, _Fake(("tokens",)), 5, label=1)
  with pytest.raises(ValueError, match=r"--caption/--captions: the 'ddpm' run takes no caption \(its conditions: "
                                       r"none, it is unconditional\)"):
    eval_conditions(c, _Fake(()), 5, captions=["a small red circle"])
  with pytest.raises(ValueError, match=r"--label=7 must lie in \[0, 5\)"):
    eval_conditions(c, _Fake(("label",), 5), 5, label=7)
  with pytest.raises(ValueError, match="not in the vocabulary"):
    eval_conditions(c, _Fake(("tokens",)), 5, captions=["a small purple hexagon"])
