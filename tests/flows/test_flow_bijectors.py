"""Every layer: inverse(forward(x)) == x to < 1e-4 and log|det J| == slogdet(jax.jacfwd) on small inputs."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flow_testutil import brute_force_log_det, check_bijector, perturb
from jaxgen.flows.bijector import Chain, Repeat, Squeeze
from jaxgen.flows.coupling import Coupling, DiagonalScaling, coupling_mask
from jaxgen.flows.glow import ActNorm, InvertibleConv1x1, glow_step
from jaxgen.flows.multiscale import Level, MultiScale
from jaxgen.nn.conditioners import ConvConditioner, MLPConditioner

IMG = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 2))
VEC = jax.random.normal(jax.random.PRNGKey(1), (3, 4))
conv = lambda out: ConvConditioner(4, out, num_blocks=0)   # noqa: E731
mlp = lambda out: MLPConditioner(8, out, 2)                 # noqa: E731


@pytest.mark.parametrize("mask,kind,scale,parity", [
    ("checkerboard", "affine", "tanh", 0), ("checkerboard", "affine", "sigmoid", 1),
    ("channel", "affine", "tanh", 1), ("channel", "affine", "sigmoid", 0), ("checkerboard", "additive", "tanh", 0)])
def test_image_couplings(mask, kind, scale, parity):
  net = (lambda out: ConvConditioner(4, out, num_blocks=1)) if parity else conv   # residual blocks too
  c = Coupling(net, mask=mask, parity=parity, kind=kind, scale=scale)
  if kind == "additive":
    p = perturb(c.init(jax.random.PRNGKey(0), IMG), jax.random.PRNGKey(1))
    y, ld = c.forward(p, IMG)
    np.testing.assert_allclose(ld, 0.0)
    np.testing.assert_array_less(np.abs(c.inverse(p, y)[0] - IMG).max(), 1e-4)
    assert brute_force_log_det(lambda v: c.forward(p, v)[0], IMG[:1]) == pytest.approx(0.0, abs=1e-4)
  else:
    check_bijector(c, IMG)


def test_coupling_keeps_masked_half():
  c = Coupling(conv, mask="checkerboard", parity=0)
  p = perturb(c.init(jax.random.PRNGKey(0), IMG), jax.random.PRNGKey(1))
  m = coupling_mask(IMG.shape, "checkerboard", 0)
  y, _ = c.forward(p, IMG)
  np.testing.assert_allclose(m * y, m * IMG)
  assert float(jnp.abs((1 - m) * (y - IMG)).max()) > 1e-2


def test_vector_layers():
  for bij in (Coupling(mlp, mask="channel", parity=1, kind="affine", scale="tanh"), DiagonalScaling(),
              ActNorm(), InvertibleConv1x1(), glow_step(mlp)):
    check_bijector(bij, VEC)


def test_actnorm_and_conv1x1_on_images():
  check_bijector(ActNorm(), IMG)
  check_bijector(InvertibleConv1x1(), IMG)


def test_squeeze_round_trip_and_layout():
  x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
  s = Squeeze()
  y, ld = s.forward(s.init(None, x), x)
  assert y.shape == (2, 2, 2, 12) and float(jnp.abs(ld).max()) == 0.0
  np.testing.assert_array_equal(y[0, 0, 0], jnp.concatenate([x[0, 0, 0], x[0, 0, 1], x[0, 1, 0], x[0, 1, 1]]))
  np.testing.assert_array_equal(s.inverse({}, y)[0], x)
  with pytest.raises(ValueError, match="even"):
    s.init(None, jnp.zeros((1, 3, 4, 1)))


def test_repeat_scan_equals_chain_of_copies():
  step = glow_step(conv)
  rep = Repeat(step, 2)
  p = perturb(rep.init(jax.random.PRNGKey(0), IMG), jax.random.PRNGKey(1))
  copies = [jax.tree.map(lambda a, i=i: a[i], p) for i in range(2)]
  y1, ld1 = rep.forward(p, IMG)
  y2, ld2 = Chain((step,) * 2).forward(tuple(copies), IMG)
  np.testing.assert_allclose(y1, y2, atol=1e-5)
  np.testing.assert_allclose(ld1, ld2, rtol=1e-5)
  check_bijector(rep, IMG)


def _num_equations(jaxpr) -> int:
  """Equations of a jaxpr, counting those of the sub-jaxprs (scan bodies, custom derivatives) once each."""
  total = 0
  for eqn in jaxpr.eqns:
    total += 1
    for v in eqn.params.values():
      for sub in (v if isinstance(v, (tuple, list)) else (v,)):
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          total += _num_equations(inner)
  return total


def test_repeat_program_size_is_flat_in_depth():
  """The compiled program of a scanned stack does not grow with depth (an unrolled Chain does), so compile
  time stays flat; benchmarks/flow_compile_time.py measures the compile times."""
  step = glow_step(conv)

  def size(bij, depth):
    p = jax.eval_shape(lambda: bij.init(jax.random.PRNGKey(0), IMG))
    loss = lambda p: jnp.sum(bij.forward(p, IMG)[1]) + jnp.sum(bij.inverse(p, IMG)[0])   # noqa: E731
    return _num_equations(jax.make_jaxpr(jax.grad(loss))(p).jaxpr)
  scanned = [size(Repeat(step, d), d) for d in (2, 8)]
  unrolled = [size(Chain((step,) * d), d) for d in (2, 8)]
  assert scanned[0] == scanned[1], scanned
  assert unrolled[1] > 3 * unrolled[0], unrolled


@pytest.mark.parametrize("learned,num_classes", [(False, 0), (True, 3)])
def test_multiscale_end_to_end(learned, num_classes):
  x = jax.random.normal(jax.random.PRNGKey(2), (2, 4, 4, 1))
  cp = functools.partial(Coupling, conv, kind="affine", scale="tanh")
  levels = (Level(pre=cp(mask="checkerboard"), squeeze=True, post=glow_step(conv), split=True),
            Level(pre=None, squeeze=True, post=cp(mask="channel", parity=1), split=False))
  ms = MultiScale(levels, (4, 4, 1), learned_prior=learned, num_classes=num_classes)
  assert ms.latent_shapes() == ((2, 2, 2), (1, 1, 8)) and ms.event_size == 16
  cond = jnp.array([0, 2]) if num_classes else None
  params = check_bijector(ms, x, cond)
  eps, _ = ms.forward(params, x, cond)
  assert eps.shape == (2, 16)


def test_multiscale_geometry_is_checked():
  with pytest.raises(ValueError, match="odd size"):
    MultiScale((Level(), Level(), Level(split=False)), (4, 4, 1))
  with pytest.raises(ValueError, match="channel mask"):
    Coupling(conv, mask="channel").init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1)))
  with pytest.raises(ValueError, match="coupling kind"):
    Coupling(conv, kind="spline")
