"""Process-level setup that must happen before JAX starts its backend: XLA flags, PRNG, multi-host."""
from __future__ import annotations

import logging
import os
import platform
from typing import Any, Dict

from jaxgen.data.tf_import import STARTUP_NOISE  # noqa: F401  (re-exported: TensorFlow's import notices)

# XLA:CPU's YNN convolution fusion is slow for some of the U-Net's training convolutions; switching it off for
# individual convolutions speeds up the DDPM train step on CPU (benchmarks/train_throughput.py on a 2-core Zen3:
# 3.88 vs 3.49 img/s at batch 32, within noise at batch 8; earlier notes measured up to 1.5x). CPU backend only.
CPU_FAST_CONV_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def set_xla_cpu_flags(enable: bool = True) -> None:
  """Append the CPU convolution flag to XLA_FLAGS unless the user already set that option themselves."""
  flags = os.environ.get("XLA_FLAGS", "")
  if enable and "xla_cpu_experimental_ynn_fusion_type" not in flags:
    os.environ["XLA_FLAGS"] = (flags + " " + CPU_FAST_CONV_FLAG).strip()


def configure_jax(config) -> None:
  """Apply `config.xla_cpu_fast_conv` and `config.prng_impl` before the first JAX computation."""
  set_xla_cpu_flags(config.get("xla_cpu_fast_conv", True))
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")   # TF (the input pipeline) only: hide its INFO banner
  import jax
  impl = check_prng_impl(config)
  jax.config.update("jax_default_prng_impl", impl)


PRNG_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")


def check_prng_impl(config) -> str:
  """config.prng_impl (default threefry2x32), or ValueError naming it and the allowed ones."""
  impl = config.get("prng_impl", "threefry2x32")
  if impl not in PRNG_IMPLS:
    raise ValueError(f"prng_impl={impl!r}; choose one of: {', '.join(PRNG_IMPLS)}")
  return impl


_ABSL_NOISE = ("has no dataset_info.json",)      # tfds: "Variant folder <dir> has no dataset_info.json" (first build)


class _DropNotices(logging.Filter):
  def filter(self, record: logging.LogRecord) -> bool:
    return not any(n in record.getMessage() for n in _ABSL_NOISE)


def quiet_startup(verbose: bool = False) -> None:
  """Cut TensorFlow's start-up notices whenever something first imports it (jaxgen.data.tf_import: TensorFlow
  is no longer imported here, only where the tfds pipeline or TensorBoard needs it) and drop TFDS's
  dataset_info notice; `verbose` (the command line's -v) keeps all of it."""
  from jaxgen.data import tf_import
  tf_import.set_quiet(not verbose)
  if not verbose:
    logging.getLogger("absl").addFilter(_DropNotices())


def runtime_info() -> Dict[str, Any]:
  """What a run's config.json records about the machine and software it ran on."""
  import jax
  import jaxlib
  return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()], "device_count": jax.device_count(),
          "process_count": jax.process_count(), "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
          "prng_impl": str(jax.config.jax_default_prng_impl), "host": platform.node(),
          "python": platform.python_version()}
