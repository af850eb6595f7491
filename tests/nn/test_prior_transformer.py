"""unCLIP's prior network (jaxgen.nn.prior_transformer): shape and zero output at init, causality of its sequence
[token features, text embedding, t, x, query] read at every position, the null condition, classifier-free
guidance against the direct (1 + w) f(x, c) - w f(x, null), and the DDPM family built with
model.kind='prior_transformer' on 2-D points (a finite loss and a finite step). Compiling is what costs on a
CPU: tiny widths, every forward pass of a shape through one jitted function, parameters perturbed (or drawn)
with numpy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import conditions
from jaxgen.diffusion.guidance import guided_model_fn
from jaxgen.nn.prior_transformer import PriorTransformer

B, D, DT, L, W = 4, 4, 3, 2, 5
NULLS = {"embedding": 0.0, "token_features": 0.0}


def _noise(shapes, seed=7, scale=0.3):
  """numpy noise shaped like a tree of parameters (no compiled op per leaf shape): added to the parameters so
  the zero-initialised output projection does not hide the network, or drawn as parameters."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda v: jnp.asarray(scale * rng.standard_normal(v.shape) if scale else np.zeros(v.shape),
                                            jnp.float32), shapes)


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  normal = lambda *shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)   # noqa: E731
  x = normal(B, D)
  t = jnp.asarray([0, 7, 19, 3], jnp.int32)
  return x, t, {"embedding": normal(B, DT), "token_features": normal(B, L, W)}


@pytest.fixture(scope="module")
def prior():
  """The network, the shapes of its parameters and one compiled function for every test of batch B:
  apply(delta, x, t, cond) -> (output, the Transformer's output at every position) with parameters = init +
  delta (delta = zeros: the initial network)."""
  net = PriorTransformer(width=16, depth=1, num_heads=2, embed_dim=D, text_embed_dim=DT, num_tokens=L, token_dim=W)
  x, t, cond = _inputs()
  shapes = jax.eval_shape(net.init, jax.random.PRNGKey(0), x, t, cond)["params"]

  @jax.jit
  def apply(delta, x, t, cond):
    params = jax.tree.map(jnp.add, net.init(jax.random.PRNGKey(0), x, t, cond)["params"], delta)
    out, state = net.apply({"params": params}, x, t, cond, capture_intermediates=True)
    return out, state["intermediates"]["transformer"]["__call__"][0]
  return net, shapes, apply


def test_shape_features_and_zero_output_at_init(prior):
  net, shapes, apply = prior
  x, t, cond = _inputs()
  out, _ = apply(_noise(shapes, scale=0.0), x, t, cond)
  assert out.shape == (B, D) and out.dtype == jnp.float32
  np.testing.assert_array_equal(out, 0.0)
  assert net.cond_features == ("embedding", "token_features") and net.seq_len == L + 4
  assert PriorTransformer(16, 1, 2, D).cond_features == ()
  params = _noise(shapes)       # (the refusals come before any parameter is read: nothing compiles)
  with pytest.raises(ValueError, match=r"is conditioned on \('embedding', 'token_features'\) but was given"):
    net.apply({"params": params}, x, t, {"embedding": cond["embedding"]})
  with pytest.raises(ValueError, match=r"takes vectors \(B, 4\); got shape \(4, 5\)"):
    net.apply({"params": params}, jnp.zeros((B, 5)), t, cond)


def test_the_sequence_is_causal_in_the_papers_order(prior):
  """The Transformer's output at every position (captured): changing one element of the sequence changes the
  outputs at its position and after it, never before; the order is [tokens (L), text embedding, t, x, query]."""
  _, shapes, apply = prior
  delta = _noise(shapes)
  x, t, cond = _inputs()
  hidden = lambda x, t, cond: np.asarray(apply(delta, x, t, cond)[1])     # noqa: E731   (B, L + 4, width)

  base = hidden(x, t, cond)
  assert base.shape == (B, L + 4, 16)
  bump = lambda a: jnp.asarray(np.asarray(a) + 1, a.dtype)   # noqa: E731   (numpy: no op compiled)
  tokens = np.array(cond["token_features"])
  tokens[:, 1] += 1.0
  changed = {1: hidden(x, t, dict(cond, token_features=jnp.asarray(tokens))),
             L: hidden(x, t, dict(cond, embedding=bump(cond["embedding"]))),
             L + 1: hidden(x, bump(t), cond),
             L + 2: hidden(bump(x), t, cond)}
  for position, h in changed.items():
    np.testing.assert_allclose(h[:, :position], base[:, :position], rtol=1e-6, atol=1e-6)
    assert np.all(np.abs(h[:, position:] - base[:, position:]).max(axis=-1) > 1e-4), position


def test_the_condition_changes_the_output_and_zeros_are_the_null(prior):
  _, shapes, apply = prior
  delta = _noise(shapes)
  x, t, cond = _inputs()
  f = lambda c: np.asarray(apply(delta, x, t, c)[0])   # noqa: E731
  out = f(cond)
  assert np.abs(out).min() > 0
  assert np.abs(f(dict(cond, embedding=jnp.asarray(-np.asarray(cond["embedding"])))) - out).max() > 1e-3
  zeros = {"embedding": jnp.zeros((B, DT)), "token_features": jnp.zeros((B, L, W))}
  np.testing.assert_array_equal(f(conditions.null(cond, NULLS)), f(zeros))
  np.testing.assert_array_equal(f(conditions.drop(cond, jax.random.PRNGKey(0), 1.0 - 1e-7, NULLS)), f(zeros))


def test_guidance_on_the_embedding_condition_equals_the_direct_formula(prior):
  """guided_model_fn's (1 + w) f(x, c) - w f(x, null), the two passes in one batch, against two separate calls;
  the condition varies by its embedding alone (zero token features, their null)."""
  _, shapes, apply = prior
  delta = _noise(shapes, seed=3)
  x, t, cond = _inputs(1)
  cond = dict(cond, token_features=jnp.zeros((B, L, W)))
  null = conditions.null(cond, NULLS)
  # One compiled batch size, B = 4: the direct passes on 4 examples, the guided pass on the first 2 (cond and
  # null in one batch of 4); each example's output depends on that example alone.
  f = lambda x, t, c: apply(delta, x, t, c)[0]   # noqa: E731
  model = lambda x, t, c: (f(x, t, c), 2.0 * f(x, t, c) - x)   # noqa: E731   (eps, x0), as the samplers take
  direct, direct_null = np.asarray(f(x, t, cond))[:2], np.asarray(f(x, t, null))[:2]
  assert np.abs(direct - direct_null).max() > 1e-3    # the null pass matters
  for w in (1.5, 4.0):                     # (w = 0 is one plain pass of the conditional model)
    eps, x0 = guided_model_fn(model, conditions.take(cond, slice(0, 2)), NULLS, w)(x[:2], t[:2])
    want = (1 + w) * direct - w * direct_null
    np.testing.assert_allclose(eps, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x0, 2.0 * want - np.asarray(x[:2]), rtol=1e-5, atol=1e-5)


def _toy_config(**model):
  from experiments.ddpm_toy2d import get_config
  c = get_config("smoke")
  c.model = dict(kind="prior_transformer", width=16, depth=1, num_heads=2, **model)
  c.diffusion.prediction = "x0"                    # the paper's prior predicts the clean embedding
  return c


def test_config_errors_name_the_value():
  from jaxgen.diffusion.build import validate_ddpm_config
  for model, message in [(dict(kind="transformer"), "model.kind='transformer'; choose one of: unet, mlp, "
                                                    "prior_transformer"),
                         (dict(width=15), "model.width=15 is not divisible by model.num_heads=2"),
                         (dict(num_heads=0), "model.num_heads=0 must be an int >= 1"),
                         (dict(text_embed_dim=8), r"model.text_embed_dim=8: the prior reads cond\['embedding'\] "
                                                  r"of shape \(8,\); data.name='eight_gaussians' gives no such feature"),
                         (dict(num_tokens=4), "model.num_tokens=4, model.token_dim=0: set both"),
                         (dict(dropout=0.1), "model.dropout=0.1: model.kind='prior_transformer' has no dropout")]:
    c = _toy_config()
    c.model.update(model)
    with pytest.raises(ValueError, match=message):
      validate_ddpm_config(c)
  c = _toy_config()
  c.diffusion.guidance = 1.0
  with pytest.raises(ValueError, match="needs a conditional model"):
    validate_ddpm_config(c)


def test_the_ddpm_family_trains_the_prior_on_points():
  """make_ddpm from a config with model.kind='prior_transformer': a finite loss, finite gradients, and one SGD
  step to finite parameters and a finite loss (one compiled function, called twice; the initial parameters are
  numpy draws of init's shapes with its zero output projection, not a second compiled function)."""
  from jaxgen.diffusion.build import make_ddpm, validate_ddpm_config
  c = _toy_config()
  validate_ddpm_config(c)
  ddpm = make_ddpm(c)
  assert isinstance(ddpm.network, PriorTransformer) and ddpm.network.embed_dim == 2 and ddpm.cond_features == ()
  shapes = jax.eval_shape(ddpm.init, jax.random.PRNGKey(0))
  params = _noise(shapes, scale=0.1)
  params["out"] = _noise(shapes["out"], scale=0.0)
  points = jnp.asarray(np.random.default_rng(1).standard_normal((16, 2)), jnp.float32)
  step = jax.jit(jax.value_and_grad(lambda p, rng: ddpm.loss(p, {"points": points}, rng), has_aux=True))
  (loss, _), grads = step(params, jax.random.PRNGKey(2))
  assert np.isfinite(float(loss)) and float(loss) > 0
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert float(jnp.abs(grads["out"]["kernel"]).max()) > 0     # the zero output projection is trained
  params = jax.tree.map(lambda p, g: p - 1e-2 * g, params, grads)
  (loss2, _), _ = step(params, jax.random.PRNGKey(2))
  assert np.isfinite(float(loss2)) and all(np.all(np.isfinite(p)) for p in jax.tree.leaves(params))


def test_a_conditional_prior_in_the_ddpm_family_traces():
  """DDPM with a prior conditioned on both features: init's example condition, the loss with condition dropout
  to the nulls, and the guided sampler's model_fn trace (jax.eval_shape: nothing compiles); a sample grid needs
  a given condition."""
  from jaxgen.diffusion import schedules
  from jaxgen.diffusion.codecs import VectorCodec
  from jaxgen.diffusion.ddpm import DDPM
  net = PriorTransformer(width=16, depth=1, num_heads=2, embed_dim=D, text_embed_dim=DT, num_tokens=L, token_dim=W)
  ddpm = DDPM(network=net, schedule=schedules.make_schedule("cosine", 20), prediction="x0", label_dropout=0.2,
              codec=VectorCodec((D,), feature="image_embedding"))
  assert ddpm.cond_features == ("embedding", "token_features")
  params = jax.eval_shape(ddpm.init, jax.random.PRNGKey(0))
  x, t, cond = _inputs()
  loss, _ = jax.eval_shape(ddpm.loss, params, {"image_embedding": x, **cond}, jax.random.PRNGKey(1))
  assert loss.shape == ()
  eps, x0 = jax.eval_shape(lambda p: ddpm.model_fn(p, cond, guidance=3.0)(x, t), params)
  assert eps.shape == x0.shape == (B, D)
  with pytest.raises(ValueError, match=r"conditioned on \('embedding', 'token_features'\) has no default sample"):
    ddpm.default_cond(4)
