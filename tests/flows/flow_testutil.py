"""Helpers shared by the flow tests (no __init__.py: imported by path from conftest-free tests)."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.flows.glow import CONSTANT_KEYS as FIXED   # the LU conv's fixed permutation and signs


def perturb(params, rng, scale=0.1):
  """Non-trivial parameters: add noise to every leaf except the LU conv's fixed parts."""
  leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
  keys = jax.random.split(rng, len(leaves))
  out = []
  for (path, leaf), k in zip(leaves, keys):
    name = getattr(path[-1], "key", None)
    out.append(leaf if name in FIXED else leaf + scale * jax.random.normal(k, leaf.shape, leaf.dtype))
  return jax.tree_util.tree_unflatten(treedef, out)


def brute_force_log_det(fn, x_one):
  """log|det J| of fn at a single example (batch of 1), from jax.jacfwd on the flattened input."""
  shape = x_one.shape

  def flat(v):
    return fn(v.reshape(shape)).reshape(-1)
  jac = jax.jacfwd(flat)(x_one.reshape(-1))
  sign, logdet = jnp.linalg.slogdet(jac)
  assert float(sign) != 0.0
  return float(logdet)


def check_bijector(bij, x, cond=None, rng=0, tol_rt=1e-4, tol_ld=1e-3):
  params = perturb(bij.init(jax.random.PRNGKey(rng), x, cond), jax.random.PRNGKey(rng + 1))
  y, ld = bij.forward(params, x, cond)
  x_back, ld_inv = bij.inverse(params, y, cond)
  np.testing.assert_array_less(np.abs(np.asarray(x_back - x)).max(), tol_rt)
  np.testing.assert_allclose(ld_inv, -ld, atol=tol_ld, rtol=1e-5)
  assert ld.dtype == jnp.float32 and ld.shape == (x.shape[0],)
  for i in range(min(2, x.shape[0])):
    c = None if cond is None else cond[i:i + 1]
    want = brute_force_log_det(lambda v: bij.forward(params, v, c)[0], x[i:i + 1])
    np.testing.assert_allclose(float(ld[i]), want, atol=tol_ld, rtol=1e-4)
  assert float(jnp.abs(ld).max()) > 1e-3 or isinstance(bij, tuple)   # non-trivial Jacobian
  return params
