"""The offline `shapes` data set: deterministic scenes whose attributes can be read back from the pixels, captions
bound to the right objects, and the TFDS builder (tiny config) serving exactly the generator's examples."""
import numpy as np
import pytest

from jaxgen.data.builders import shapes as S


def test_examples_are_pure_functions_of_split_and_index():
  a, b = S.example("train", 123), S.example("train", 123)
  for k in a:
    assert np.array_equal(a[k], b[k]) if k != "caption" else a[k] == b[k]
  assert not np.array_equal(S.example("test", 123)["image"], a["image"])
  assert a["image"].shape == (32, 32, 3) and a["image"].dtype == np.uint8


def test_attribute_values_all_occur():
  arr = S.shapes_split_arrays("train", 1500)
  att = arr["attributes"]
  assert set(att[:, 0]) == {1, 2, 3}
  kinds, colours, sizes = att[:, 1::4], att[:, 2::4], att[:, 3::4]
  assert set(kinds[kinds > 0] - 1) == set(range(len(S.SHAPES)))
  assert set(colours[colours > 0] - 1) == set(range(len(S.COLOUR_NAMES)))
  assert set(sizes[sizes > 0] - 1) == {0, 1}
  np.testing.assert_array_equal(arr["label"], att[:, 1] - 1)      # label = the first object's kind


def test_attributes_are_recoverable_from_the_pixels():
  """At each object's centre the pixel has the object's colour; an empty quadrant shows the background."""
  for i in range(200):
    scene = S.make_scene("train", i)
    image = S.render(scene).astype(int)
    for kind, colour, size, q, cx, cy in scene.objects:
      np.testing.assert_allclose(image[int(cy), int(cx)], S.COLOURS[S.COLOUR_NAMES[colour]], atol=2)
    used = {o[3] for o in scene.objects}
    for q in set(range(4)) - used:
      y, x = 8 + 16 * (q // 2), 8 + 16 * (q % 2)
      shade = 1 + 0.12 * ((y * 4 + 1.5) / 127 * 2 - 1)
      np.testing.assert_allclose(image[y, x], np.asarray(S.BACKGROUNDS[scene.background]) * shade, atol=2)


def test_captions_bind_each_attribute_to_its_object():
  for i in range(300):
    scene = S.make_scene("test", i)
    text = S.caption(scene)
    phrases = [f"a {S.SIZES[o[2]]} {S.COLOUR_NAMES[o[1]]} {S.SHAPES[o[0]]}" for o in scene.objects]
    start = 0
    for p in phrases:                             # every object's own phrase, in reading order
      start = text.index(p, start) + len(p)
    if len(scene.objects) == 2:
      (qa, qb) = (o[3] for o in scene.objects)
      between = text[len(phrases[0]):text.index(phrases[1], len(phrases[0]))].strip()
      want = "above" if qa // 2 < qb // 2 else "below" if qa // 2 > qb // 2 else \
          "to the left of" if qa % 2 < qb % 2 else "to the right of"
      assert between == want, (text, qa, qb)
    assert S.detokenize(S.tokenize(text)) == text
  with pytest.raises(ValueError, match="not in the vocabulary"):
    S.tokenize("a small pink circle")


def test_tfds_builder_serves_the_generated_examples(tmp_path):
  from jaxgen.data import get_dataset_spec, tfds as jd
  split = jd.load_split_numpy("shapes_tiny", "test", tmp_path)
  ref = S.shapes_split_arrays("test", S.TINY_SPLIT_SIZES["test"])
  for k in ("image", "label", "attributes", "tokens"):
    np.testing.assert_array_equal(split[k], ref[k])
  assert [c.decode() for c in split["caption"]] == list(ref["caption"])
  spec = get_dataset_spec("shapes_tiny")
  cfg = type("C", (), dict(name="shapes_tiny", data_dir=str(tmp_path), random_flip=False, download=False))()
  batch = next(jd.make_train_iterator(cfg, global_batch_size=8, seed=0, process_index=0, process_count=1))
  assert set(batch) == set(spec.device_features) == {"image", "label", "attributes", "tokens"}   # no caption
  assert batch["tokens"].shape == (8, S.MAX_TOKENS) and batch["tokens"].dtype == np.int32
  assert batch["attributes"].shape == (8, S.NUM_ATTRIBUTES) and batch["image"].shape == (8, 32, 32, 3)
