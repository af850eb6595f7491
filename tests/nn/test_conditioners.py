"""The conditioners' two convolution implementations agree (values and gradients) and keep nn.Conv's parameters."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn.conditioners import ConvConditioner, SameConv, conv2d_same


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matmul_conv_equals_xla_conv_with_gradients(k):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 6, 3))
  w = jax.random.normal(jax.random.PRNGKey(1), (k, k, 3, 4))
  np.testing.assert_allclose(conv2d_same(x, w, "matmul"), conv2d_same(x, w, "xla"), atol=1e-5)
  loss = lambda impl: lambda x, w: jnp.sum(jnp.sin(conv2d_same(x, w, impl)))   # noqa: E731
  gm, gx = jax.grad(loss("matmul"), (0, 1))(x, w), jax.grad(loss("xla"), (0, 1))(x, w)
  for a, b in zip(gm, gx):
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_same_conv_has_nn_conv_parameters_and_values():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 3))
  ref = nn.Conv(8, (3, 3), padding="SAME")
  ours = SameConv(8, 3, impl="matmul")
  p_ref, p_ours = ref.init(jax.random.PRNGKey(2), x), ours.init(jax.random.PRNGKey(2), x)
  assert jax.tree.map(jnp.shape, p_ref) == jax.tree.map(jnp.shape, p_ours)
  np.testing.assert_allclose(ours.apply(p_ref, x), ref.apply(p_ref, x), atol=1e-5)   # nn.Conv params load as they are


def test_conditioner_impls_agree_and_bad_impl_is_named():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 2))
  a, b = ConvConditioner(8, 4, num_blocks=1, conv_impl="matmul"), ConvConditioner(8, 4, num_blocks=1, conv_impl="xla")
  p = a.init(jax.random.PRNGKey(1), x)
  p = jax.tree.map(lambda v: v + 0.1 * jax.random.normal(jax.random.PRNGKey(3), v.shape), p)   # non-zero last layer
  np.testing.assert_allclose(a.apply(p, x), b.apply(p, x), atol=1e-5)
  with pytest.raises(ValueError, match="cudnn"):
    conv2d_same(x, jnp.zeros((3, 3, 2, 2)), "cudnn")
  with pytest.raises(ValueError, match="odd"):
    conv2d_same(x, jnp.zeros((2, 2, 2, 2)), "matmul")
