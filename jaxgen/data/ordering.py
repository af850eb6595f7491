"""Resumable, reproducible epoch ordering for tf.data (used by jaxgen.data.tfds).

`ordered_batches` turns a finite dataset of feature dicts ({'image', 'label', ...})
into an endless dataset of batches whose content at step s is a pure function of
(seed, stream_id, s):

  * the split is cached in memory and each example gets its index i in the split;
  * epoch e is a full-buffer shuffle seeded from stateless_fold_in((seed, stream_id), e),
    with reshuffle_each_iteration=False, followed (optionally) by a horizontal
    flip decided by a stateless draw from the (seed, stream_id, e, i) key;
  * every epoch is batched on its own with drop_remainder=True, so each epoch has
    exactly steps_per_epoch = N // local_batch batches;
  * starting at step s builds epochs from s // steps_per_epoch onwards and skips
    the first s % steps_per_epoch batches.

Hence a pipeline created with start_step=s yields the same batches as one
created at 0 and advanced by s. (With TF's global seed unset, as jaxgen
leaves it; `tf.random.set_seed` would change the shuffle seeds.)
"""
from __future__ import annotations

import numpy as np

from jaxgen.data.tf_import import import_tf as _tf


def count_examples(ds) -> int:
  """Number of elements of a finite dataset (cardinality, else by counting)."""
  tf = _tf()
  n = int(ds.cardinality())
  if n == tf.data.INFINITE_CARDINALITY:
    raise ValueError("expected a finite dataset")
  if n < 0:  # unknown: count (this also fills a cache() placed before it)
    n = int(ds.reduce(np.int64(0), lambda c, _: c + 1))
  return n


def ordered_batches(ds, *, local_batch: int, seed: int, start_step: int = 0,
                    stream_id: int = 0, random_flip: bool = False,
                    what: str = "dataset"):
  """Endless batches of `ds` (elements: dicts of features; 'image' HWC is the one flipped).

  Raises ValueError if `ds` has fewer than `local_batch` examples.
  """
  tf = _tf()
  ds = ds.cache()
  n = count_examples(ds)
  if n < local_batch:
    raise ValueError(f"{what} has {n} examples, fewer than one local batch of "
                     f"{local_batch}; use a smaller batch size or fewer processes")
  steps_per_epoch = n // local_batch
  start_epoch, skip = divmod(int(start_step), steps_per_epoch)
  base_key = tf.constant([int(seed), int(stream_id)], dtype=tf.int64)
  indexed = ds.enumerate()  # (i, example), i restarts at 0 every epoch

  def flip(key, i, ex):
    ex_key = tf.random.experimental.stateless_fold_in(key, i)
    do_flip = tf.random.stateless_uniform([], seed=ex_key) < 0.5
    image = ex["image"]
    return dict(ex, image=tf.where(do_flip, tf.reverse(image, axis=[1]), image))  # HWC: flip W

  def epoch(e):
    key = tf.random.experimental.stateless_fold_in(base_key, e)
    shuffle_seed = tf.random.stateless_uniform(
        [], seed=key, minval=None, maxval=None, dtype=tf.int64)
    d = indexed.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=False)
    if random_flip:
      d = d.map(lambda i, ex: flip(key, i, ex))
    else:
      d = d.map(lambda i, ex: ex)
    return d.batch(local_batch, drop_remainder=True)

  out = tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max).flat_map(epoch)
  out = out.skip(skip)
  options = tf.data.Options()
  options.deterministic = True
  return out.with_options(options).prefetch(tf.data.AUTOTUNE)
