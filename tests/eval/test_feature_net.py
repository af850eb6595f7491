"""The offline feature networks: deterministic training, held-out accuracy, a cache that restores the same
network, a feature space in which real digits are close to real digits and far from noise, and per-quadrant
targets that are the scene's attributes."""
import ml_collections
import numpy as np
import pytest

from jaxgen.data.builders import shapes as S
from jaxgen.eval import feature_net as fn
from jaxgen.eval.metrics import fid


def _config(name, data_dir):
  return ml_collections.ConfigDict(dict(data=dict(name=name, data_dir=str(data_dir), download=False)))


def test_digits_feature_net_is_deterministic_accurate_and_cached(tmp_path, monkeypatch):
  monkeypatch.delenv(fn.CACHE_ENV, raising=False)           # the cache under the data dir, as users have it
  config = _config("digits", tmp_path)
  net = fn.load_feature_net(config, steps=100)
  assert net.test_accuracy["label"] > 0.93
  again = fn.train_feature_net("digits", *(fn_split(config, s) for s in ("train", "test")), steps=100)
  np.testing.assert_array_equal(np.asarray(again.params["features"]["kernel"]), np.asarray(net.params["features"]["kernel"]))
  monkeypatch.setattr(fn, "train_feature_net", None)       # read back from <data_dir>/jaxgen_features, not retrained
  cached = fn.load_feature_net(config, steps=100)
  assert cached.cache == str(tmp_path / "jaxgen_features" / "digits-v1-s100")
  assert cached.test_accuracy == net.test_accuracy
  test, train = fn_split(config, "test"), fn_split(config, "train")
  np.testing.assert_array_equal(cached.features(test["image"][:50]), net.features(test["image"][:50]))
  real = fid(net.features(test["image"]), net.features(train["image"]))
  noise = np.random.default_rng(0).integers(0, 256, test["image"].shape, dtype=np.uint8)
  assert real * 10 < fid(net.features(noise), net.features(train["image"]))


def fn_split(config, split):
  from jaxgen.data import load_split
  return load_split(config, split)


def test_shapes_targets_are_the_scene_attributes():
  arr = S.shapes_split_arrays("train", 50)
  t = fn.targets_for("shapes", arr)
  for i in range(50):
    scene = S.make_scene("train", i)
    assert t["count"][i] == len(scene.objects) - 1
    for q in range(4):
      obj = [o for o in scene.objects if o[3] == q]
      want = (obj[0][0] + 1, obj[0][1] + 1, obj[0][2] + 1) if obj else (0, 0, 0)
      assert (t[f"q{q}_kind"][i], t[f"q{q}_colour"][i], t[f"q{q}_size"][i]) == want
  assert set(fn.heads_for("shapes")) == set(t)


def test_unknown_data_set_is_named():
  with pytest.raises(ValueError, match="no feature network for data set 'cifar10'"):
    fn.heads_for("cifar10")
