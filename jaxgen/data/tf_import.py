"""TensorFlow for the host data pipeline and TensorBoard, imported once, on first use, off the accelerators.

`import_tf()` is the one door: jaxgen.data.tfds (preparation, splits, train iterators), jaxgen.data.ordering
(the resumable epoch order) and the trainer's TensorBoard writer use it. A run that needs neither (the 2-D
data sets with TensorBoard off, a study, `experiments.sample` on a points run) never imports TensorFlow, which
costs 4 to 10 s of start-up on a CPU. After `set_quiet(True)` (the command lines' default; `-v` keeps them)
the import cuts TensorFlow's start-up notices (STARTUP_NOISE), whenever it happens; anything else TensorFlow
prints on stderr while it loads is passed on.
"""
from __future__ import annotations

import os
import sys
import tempfile

# What TensorFlow's C++ libraries print on import (TF_CPP_MIN_LOG_LEVEL no longer silences them: they log through
# absl before absl is initialised): notices, not problems.
STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "cpu_feature_guard.cc",
    "rebuild TensorFlow with the appropriate compiler flags",
    "Unable to register cuDNN factory", "Unable to register cuFFT factory", "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning",
)

_TF = None
_QUIET = False


def set_quiet(quiet: bool) -> None:
  """Whether the first import of TensorFlow cuts its start-up notices (the command lines' default)."""
  global _QUIET
  _QUIET = bool(quiet)


def _import_without_notices():
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")   # TF's later INFO lines (read when TF loads)
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow  # pylint: disable=import-outside-toplevel
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      text = captured.read().decode("utf-8", errors="replace")
    kept = [line for line in text.splitlines() if line.strip() and not any(n in line for n in STARTUP_NOISE)]
    if kept:
      print("\n".join(kept), file=sys.stderr, flush=True)
  return tensorflow


def import_tf():
  """The tensorflow module, imported on first use (without its notices after set_quiet(True)), GPUs hidden."""
  global _TF
  if _TF is None:
    if _QUIET and "tensorflow" not in sys.modules:
      tf = _import_without_notices()
    else:
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
    try:
      tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # TF already initialised its devices elsewhere
      pass
    _TF = tf
  return _TF
