"""Tests of jaxgen.data.tfds: registry, prepare(), train iterators, the digits builder.

Never touches the network: cifar10 comes from tfds.testing.mock_data, and the
download probe is forced on or off by monkeypatching.
"""
import pathlib
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from jaxgen.data import tfds as jd

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("tensorflow")


def _cfg(name="cifar10", data_dir=None, random_flip=False, download=True):
  return types.SimpleNamespace(name=name, data_dir=data_dir, random_flip=random_flip,
                               download=download)


def _take(it, n):
  return [next(it) for _ in range(n)]


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  jd.prepare("digits", data_dir=data_dir)
  return str(data_dir)


@pytest.fixture
def mock_cifar(monkeypatch):
  """Fake cifar10 (64 examples); download_and_prepare is a no-op under the mock."""
  monkeypatch.setattr(jd, "network_available", lambda *a, **k: True)
  with tfds.testing.mock_data(num_examples=64):
    yield


def _cifar_batches(n, **kw):
  kw = {"global_batch_size": 8, "seed": 0, "process_index": 0, "process_count": 1, **kw}
  flip = kw.pop("random_flip", False)
  return _take(jd.make_train_iterator(_cfg(random_flip=flip), **kw), n)


# ------------------------------------------------------------------ registry


def test_unknown_dataset_lists_allowed_names():
  with pytest.raises(ValueError, match=r"'cifar100'.*cifar10, digits, eight_gaussians"):
    jd.get_dataset_spec("cifar100")
  spec = jd.get_dataset_spec("digits")
  assert (spec.image_shape, spec.num_classes, spec.offline) == ((8, 8, 1), 10, True)
  assert jd.get_dataset_spec("cifar10").image_shape == (32, 32, 3)


def test_spec_lookup_does_not_import_tensorflow_and_the_builders_register_on_import():
  """`import jaxgen` registers 'digits' and 'shapes' with TFDS (tfds.load finds them as any data set)
  without importing TensorFlow or JAX."""
  code = ('import sys, jaxgen; assert "jax" not in sys.modules, "jax imported"; '
          'import tensorflow_datasets as tfds; '
          'assert [tfds.builder_cls(n).name for n in ("digits", "shapes")] == ["digits", "shapes"]; '
          'import jaxgen.data.tfds as t; t.get_dataset_spec("cifar10"); '
          'assert "tensorflow" not in sys.modules, "tf imported"')
  repo_root = pathlib.Path(__file__).resolve().parents[2]
  subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=repo_root)


# ------------------------------------------------------------------ prepare / probe


@pytest.mark.parametrize("download", [True, False])
def test_cifar10_offline_fails_fast_with_instructions(tmp_path, monkeypatch, download):
  monkeypatch.setattr(jd, "network_available", lambda *a, **k: False)
  start = time.monotonic()
  with pytest.raises(jd.DatasetUnavailableError) as err:
    jd.prepare("cifar10", data_dir=tmp_path, download=download)
  assert time.monotonic() - start < 5
  msg = str(err.value)
  assert str(tmp_path) in msg and "cifar10" in msg
  assert "quick" in msg and "download_and_prepare" in msg and "data_dir" in msg
  assert isinstance(err.value, RuntimeError)


def test_network_probe_is_bounded_and_local():
  import socket
  server = socket.socket()
  server.bind(("127.0.0.1", 0))
  server.listen(1)
  port = server.getsockname()[1]
  try:
    assert jd.network_available("127.0.0.1", port, timeout=2)
  finally:
    server.close()
  start = time.monotonic()
  assert not jd.network_available("127.0.0.1", port, timeout=2)  # refused now
  assert time.monotonic() - start < 3


# ------------------------------------------------------------------ cifar10 pipeline (mocked)


def test_cifar_batches_shapes_and_dtypes(mock_cifar):
  for batch in _cifar_batches(3):
    assert batch["image"].shape == (8, 32, 32, 3) and batch["image"].dtype == np.uint8
    assert batch["label"].shape == (8,) and batch["label"].dtype == np.int32
    assert batch["label"].min() >= 0 and batch["label"].max() < 10


def test_cifar_order_is_a_function_of_seed(mock_cifar):
  a, b, c = _cifar_batches(10), _cifar_batches(10), _cifar_batches(10, seed=1)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["image"], y["image"])
    np.testing.assert_array_equal(x["label"], y["label"])
  assert any(not np.array_equal(x["image"], z["image"]) for x, z in zip(a, c))
  # Epochs are reshuffled: 64 examples / 8 = 8 steps per epoch.
  assert not np.array_equal(np.concatenate([x["image"] for x in a[:2]]),
                            np.concatenate([x["image"] for x in a[8:10]]))


def test_cifar_resume_matches_uninterrupted_run(mock_cifar):
  full = _cifar_batches(20, seed=3)
  for start in (5, 8, 13):  # mid-epoch, epoch boundary, next epoch
    resumed = _cifar_batches(20 - start, seed=3, start_step=start)
    for k, batch in enumerate(resumed):
      np.testing.assert_array_equal(batch["image"], full[start + k]["image"])
      np.testing.assert_array_equal(batch["label"], full[start + k]["label"])


def test_cifar_random_flip_flips_some_images(mock_cifar):
  plain = _cifar_batches(4, random_flip=False)
  flipped = _cifar_batches(4, random_flip=True)
  n_same = n_flipped = 0
  for p, f in zip(plain, flipped):
    np.testing.assert_array_equal(p["label"], f["label"])  # same order
    for x, y in zip(p["image"], f["image"]):
      if np.array_equal(x, y):
        n_same += 1
      else:
        np.testing.assert_array_equal(y, x[:, ::-1])
        n_flipped += 1
  assert n_same > 0 and n_flipped > 0


# ------------------------------------------------------------------ digits builder and sharding


def test_digits_builder_prepares_offline(digits_dir):
  from jaxgen.data.builders import digits
  builder = jd.prepare("digits", data_dir=digits_dir)
  assert builder.data_dir.startswith(digits_dir)
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
      "train": 1497, "test": 300}
  splits = {s: jd.load_split_numpy("digits", s, data_dir=digits_dir) for s in ("train", "test")}
  assert sum(len(v["label"]) for v in splits.values()) == 1797
  allowed = np.array([(v * 255 + 8) // 16 for v in range(17)], dtype=np.uint8)
  for name, data in splits.items():
    assert data["image"].shape == (digits.SPLIT_SIZES[name], 8, 8, 1)
    assert data["image"].dtype == np.uint8 and data["label"].dtype == np.int32
    assert data["image"].min() == 0 and data["image"].max() == 255
    assert np.isin(data["image"], allowed).all()
    assert sorted(set(data["label"].tolist())) == list(range(10))
    # The TFDS split holds exactly the numpy helper's examples (order aside).
    ref_images, ref_labels = digits.digits_split_arrays(name)
    key = lambda im, lb: sorted(i.tobytes() + bytes([l]) for i, l in zip(im, lb))
    assert key(data["image"], data["label"]) == key(ref_images, ref_labels)
  train_set = {x.tobytes() for x in splits["train"]["image"]}
  assert not train_set & {x.tobytes() for x in splits["test"]["image"]}


def test_digits_sharding_gives_disjoint_examples(digits_dir):
  cfg = _cfg("digits", data_dir=digits_dir, download=False)
  seen = []
  for p in range(2):  # 1497 -> shards of 749 and 748; local batch 32 -> 23 steps/epoch
    it = jd.make_train_iterator(cfg, global_batch_size=64, seed=0, process_index=p,
                                process_count=2)
    images = np.concatenate([b["image"] for b in _take(it, 23)])
    assert images.shape == (23 * 32, 8, 8, 1)
    keys = [x.tobytes() for x in images]
    assert len(set(keys)) == len(keys)  # one epoch: no example twice
    seen.append(set(keys))
  assert not seen[0] & seen[1]


def test_split_smaller_than_batch_is_an_error(digits_dir):
  cfg = _cfg("digits", data_dir=digits_dir, download=False)
  with pytest.raises(ValueError, match=r"1497 examples.*2048"):
    jd.make_train_iterator(cfg, global_batch_size=2048, seed=0, process_index=0,
                           process_count=1)
  with pytest.raises(ValueError, match="multiple of process_count"):
    jd.make_train_iterator(cfg, global_batch_size=9, seed=0, process_index=0,
                           process_count=2)
