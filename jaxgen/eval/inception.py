"""The InceptionV3 that FID and the Inception score are defined with, as a Flax module.

This is the 2015 TensorFlow graph as pytorch-fid ports it (`pytorch_fid.inception.fid_inception_v3`): the
torchvision InceptionV3 layout with 1008 logits, the FID variants of its blocks (FIDInceptionA/C/E: average
pools that exclude the padding from the average, and a max pool in the last block's pool branch), batch norm
with eps 1e-3 in inference mode, no input transform. `inception_features(params, images)` resizes images to
299x299 bilinearly as pytorch-fid does (half-pixel centres, edges clamped), maps [0, 1] to [-1, 1], and returns
the 2048-d average-pool features and the 1008 logits.

Parameters come from `python -m jaxgen.eval.convert_inception SRC DST` (pytorch-fid's published
pt_inception-2015-12-05-6726825d.pth, converted once where torch is installed); `load_inception_params` reads
the converted file without PyTorch, from `path`, else $JAXGEN_INCEPTION_WEIGHTS, else DEFAULT_WEIGHTS_PATH.
Names mirror the PyTorch modules (Mixed_5b/branch1x1/conv, .../bn), so the converter is a key mapping.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

DEFAULT_WEIGHTS_PATH = os.path.expanduser("~/.cache/jaxgen/inception_fid_2015-12-05.msgpack")
WEIGHTS_ENV = "JAXGEN_INCEPTION_WEIGHTS"
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
BN_EPS = 1e-3
NUM_LOGITS = 1008


def _pair(v):
  return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv(nn.Module):
  """torchvision's BasicConv2d: conv (no bias) -> batch norm (inference, eps 1e-3) -> ReLU."""
  features: int
  kernel: Tuple[int, int] = (1, 1)
  stride: int = 1
  padding: Tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    kh, kw = _pair(self.kernel)
    ph, pw = _pair(self.padding)
    x = nn.Conv(self.features, (kh, kw), strides=(self.stride, self.stride), padding=((ph, ph), (pw, pw)),
                use_bias=False, name="conv")(x)
    c = self.features
    bn = {k: self.param(f"bn_{k}", nn.initializers.zeros if k in ("bias", "mean") else nn.initializers.ones, (c,))
          for k in ("scale", "bias", "mean", "var")}
    x = (x - bn["mean"]) * jax.lax.rsqrt(bn["var"] + BN_EPS) * bn["scale"] + bn["bias"]
    return nn.relu(x)


def max_pool(x, k: int = 3, stride: int = 2, pad: int = 0):
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, k, k, 1), (1, stride, stride, 1),
                               ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def avg_pool_exclude_pad(x, k: int = 3):
  """3x3 stride-1 average pool with padding 1 that averages only real pixels (TF's, count_include_pad=False)."""
  pad = ((0, 0), (1, 1), (1, 1), (0, 0))
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, k, k, 1), (1, 1, 1, 1), pad)
  count = jax.lax.reduce_window(jnp.ones(x.shape[:3] + (1,), x.dtype), 0.0, jax.lax.add, (1, k, k, 1), (1, 1, 1, 1), pad)
  return total / count


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, name="branch1x1")(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(BasicConv(48, name="branch5x5_1")(x))
    b3 = BasicConv(64, name="branch3x3dbl_1")(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv(self.pool_features, name="branch_pool")(avg_pool_exclude_pad(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, (3, 3), stride=2, name="branch3x3")(x)
    bd = BasicConv(64, name="branch3x3dbl_1")(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, (3, 3), stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, max_pool(x)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c = self.channels_7x7
    b1 = BasicConv(192, name="branch1x1")(x)
    b7 = BasicConv(c, name="branch7x7_1")(x)
    b7 = BasicConv(c, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv(c, name="branch7x7dbl_1")(x)
    bd = BasicConv(c, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv(c, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv(c, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv(192, name="branch_pool")(avg_pool_exclude_pad(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(320, (3, 3), stride=2, name="branch3x3_2")(BasicConv(192, name="branch3x3_1")(x))
    b7 = BasicConv(192, name="branch7x7x3_1")(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv(192, (3, 3), stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, max_pool(x)], axis=-1)


class InceptionE(nn.Module):
  """FIDInceptionE_1 (average pool, padding excluded) or FIDInceptionE_2 (max pool) for `max_pool_branch`."""
  max_pool_branch: bool = False

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(320, name="branch1x1")(x)
    b3 = BasicConv(384, name="branch3x3_1")(x)
    b3 = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
    bd = BasicConv(448, name="branch3x3dbl_1")(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
    pooled = max_pool(x, 3, 1, 1) if self.max_pool_branch else avg_pool_exclude_pad(x)
    bp = BasicConv(192, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """x in [-1, 1], (B, 299, 299, 3) -> (pool features (B, 2048), logits (B, 1008))."""

  @nn.compact
  def __call__(self, x):
    x = BasicConv(32, (3, 3), stride=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = max_pool(x)
    x = BasicConv(80, name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = max_pool(x)
    for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
      x = InceptionA(pool_features, name=name)(x)
    x = InceptionB(name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c7, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(False, name="Mixed_7b")(x)
    x = InceptionE(True, name="Mixed_7c")(x)
    pool = jnp.mean(x, axis=(1, 2))
    return pool, nn.Dense(NUM_LOGITS, name="fc")(pool)


def resize_bilinear(images01, size: int = 299):
  """(B, H, W, C) -> (B, size, size, C), as torch's F.interpolate(mode='bilinear', align_corners=False) upsamples
  (half-pixel centres, coordinates clamped at the edges)."""
  def coords(n):
    src = (jnp.arange(size, dtype=jnp.float32) + 0.5) * (n / size) - 0.5
    src = jnp.clip(src, 0.0, n - 1)
    lo = jnp.floor(src).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, n - 1)
    return lo, hi, src - lo
  (ylo, yhi, wy), (xlo, xhi, wx) = coords(images01.shape[1]), coords(images01.shape[2])
  rows = images01[:, ylo] * (1 - wy)[None, :, None, None] + images01[:, yhi] * wy[None, :, None, None]
  return rows[:, :, xlo] * (1 - wx)[None, None, :, None] + rows[:, :, xhi] * wx[None, None, :, None]


def inception_features(params, images) -> Tuple[jax.Array, jax.Array]:
  """uint8 images (B, H, W, 3) (or floats in [0, 1]) -> (pool features (B, 2048), logits (B, 1008)), as
  pytorch-fid's InceptionV3(resize_input=True, normalize_input=True) feeds its network."""
  x = jnp.asarray(images)
  x = x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)
  x = 2.0 * resize_bilinear(x) - 1.0
  return FIDInceptionV3().apply({"params": params}, x)


def abstract_params():
  return jax.eval_shape(lambda: FIDInceptionV3().init(jax.random.PRNGKey(0), jnp.zeros((1, 299, 299, 3)))["params"])


def weights_path(path: Optional[str] = None) -> str:
  return path or os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS_PATH


def load_inception_params(path: Optional[str] = None):
  """The converted FID Inception parameters (no PyTorch needed); FileNotFoundError with instructions if absent."""
  from flax import serialization
  p = weights_path(path)
  if not os.path.exists(p):
    raise FileNotFoundError(
        f"the FID Inception weights are not at {p}. On a machine that is online, download pytorch-fid's weights "
        f"({WEIGHTS_URL}), convert them once with `python -m jaxgen.eval.convert_inception "
        f"pt_inception-2015-12-05-6726825d.pth {DEFAULT_WEIGHTS_PATH}` (needs torch), and put the result there, or "
        f"point ${WEIGHTS_ENV} (or the config's eval.inception_weights) at it")
  template = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), abstract_params())
  with open(p, "rb") as f:
    return serialization.from_bytes(template, f.read())
