"""TensorFlow for the host data pipeline, imported once and kept off the accelerators (JAX owns them).

`import_tf()` is the one door: jaxgen.data.tfds (preparation, splits, train iterators) and jaxgen.data.ordering
(the resumable epoch order) both use it, so neither imports the other for it.
"""
from __future__ import annotations

_TF = None


def import_tf():
  """The tensorflow module, imported on first use with GPUs hidden from it."""
  global _TF
  if _TF is None:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    try:
      tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # TF already initialised its devices elsewhere
      pass
    _TF = tf
  return _TF
