"""unCLIP's decoder conditioning in the U-Net (model.embed_dim): cond['embedding'] enters through the timestep
embedding and through context tokens of the cross-attention, and through nothing else; the DDPM family's
embedding dropout (zeros, the null) and classifier-free guidance against direct computations; config errors
named. One tiny U-Net, one compiled function of batch B for every test; parameters perturbed with numpy so
the zero-initialised output layers do not hide the network."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import conditions
from jaxgen.nn.unet import UNet

B, E, TOKENS = 4, 5, 2


def _noise(shapes, seed=7, scale=0.3):
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda v: jnp.asarray(scale * rng.standard_normal(v.shape), jnp.float32), shapes)


@pytest.fixture(scope="module")
def decoder():
  net = UNet(ch=8, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(4,), dropout=0.0, num_groups=4, embed_dim=E,
             embed_tokens=TOKENS, text_width=16, cross_attn_heads=2)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((B, 4, 4, 2)), jnp.float32)
  t = jnp.asarray([0, 3, 9, 17], jnp.int32)
  emb = jnp.asarray(rng.standard_normal((B, E)), jnp.float32)
  shapes = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0), x, t, {"embedding": emb}, train=False))["params"]
  apply = jax.jit(lambda p, x, t, e: net.apply({"params": p}, x, t, {"embedding": e}, train=False))
  return net, _noise(shapes), apply, (x, t, emb)


def _zeroed(params, where):
  """params with the kernels of the layers whose name `where` accepts set to zero."""
  def f(path, v):
    names = [getattr(k, "key", "") for k in path]
    return jnp.zeros_like(v) if names[-1] == "kernel" and where(names) else v
  return jax.tree_util.tree_map_with_path(f, params)


def test_the_embedding_enters_by_the_timestep_and_the_context_tokens_only(decoder):
  net, params, apply, (x, t, emb) = decoder
  assert net.cond_features == ("embedding",) and net.embedding_dim == E
  assert params["embed_tokens"]["kernel"].shape == (E, TOKENS * 16)          # TOKENS context tokens of width 16
  assert params["embed_temb"]["kernel"].shape == (E, 4 * 8)                  # into the timestep embedding
  other = emb[::-1]
  differ = lambda p: float(jnp.abs(apply(p, x, t, emb) - apply(p, x, t, other)).max())   # noqa: E731
  no_temb = lambda n: n[0] == "embed_temb"                                     # noqa: E731
  no_cross = lambda n: n[0].endswith("_cross") and "out" in n                  # noqa: E731
  assert differ(params) > 1e-3
  assert differ(_zeroed(params, no_temb)) > 1e-3          # the context tokens alone carry it
  assert differ(_zeroed(params, no_cross)) > 1e-3         # the timestep embedding alone carries it
  assert differ(_zeroed(params, lambda n: no_temb(n) or no_cross(n))) == 0.0    # and nothing else does
  with pytest.raises(ValueError, match=r"cond\['embedding'\] has shape \(4, 3\); UNet\(embed_dim=5\) takes"):
    net.apply({"params": params}, x, t, {"embedding": emb[:, :3]}, train=False)


def test_embedding_dropout_and_guidance_of_the_ddpm_family(decoder):
  """The family's training condition drops an example's embedding to zeros (its null) with label_dropout, and
  its guided model is (1 + w) f(x, e) - w f(x, 0) of the network called directly."""
  from experiments.ddpm_cifar import get_config
  from jaxgen.diffusion.build import make_ddpm
  net, params, apply, (x, t, emb) = decoder
  config = get_config("smoke")
  config.diffusion.update(prediction="eps", label_dropout=0.5)
  family = dataclasses.replace(make_ddpm(config), network=net)
  assert family.cond_features == ("embedding",)
  batch = {"image": jnp.zeros((B, 4, 4, 2), jnp.uint8), "embedding": emb}
  cond = family._cond(batch, jax.random.PRNGKey(1), train=True)        # pylint: disable=protected-access
  kept = np.all(np.asarray(cond["embedding"]) == np.asarray(emb), axis=1)
  dropped = np.all(np.asarray(cond["embedding"]) == 0.0, axis=1)
  assert np.all(kept | dropped) and kept.any() and dropped.any()
  cond_eps, null_eps = apply(params, x, t, emb), apply(params, x, t, jnp.zeros_like(emb))
  half = slice(0, B // 2)                  # the guided pass runs cond and null in one batch of B
  for w in (0.0, 2.0):
    eps, _ = family.model_fn(params, {"embedding": emb[half]}, guidance=w)(x[half], t[half])
    np.testing.assert_allclose(eps, (1 + w) * cond_eps[half] - w * null_eps[half], rtol=1e-5, atol=1e-5)


def test_embedding_config_errors_name_the_value():
  from experiments.ddpm_cifar import get_config
  from jaxgen.diffusion.build import validate_ddpm_config
  for model, message in [(dict(embed_dim=8), r"model.embed_dim=8: the U-Net reads cond\['embedding'\] of shape "
                                             r"\(8,\); data.name='digits' gives no such feature"),
                         (dict(embed_dim=-1), "model.embed_dim=-1 must be an int >= 0"),
                         (dict(embed_dim=8, embed_tokens=0), "model.embed_tokens=0 must be an int >= 1")]:
    config = get_config("smoke")
    config.model.update(model)
    with pytest.raises(ValueError, match=message):
      validate_ddpm_config(config)
