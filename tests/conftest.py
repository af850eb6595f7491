"""Shared pytest setup: keep JAX on the CPU with one device unless a test asks otherwise; the CPU convolution
flag that every jaxgen command sets (jaxgen.train.runtime); one feature-network cache for the whole session
(tests and the commands they start share the networks trained for the smoke presets).

Compile time, not run time, is what the tests' tiny models cost on a CPU (the smoke U-Net's train step takes
~19 s to compile and milliseconds to run), so the session, and every command a test starts (they inherit the
environment):
- compiles with XLA's backend optimisation level 1 instead of 2 (LLVM's cheaper pipeline: the smoke U-Net's
  init compiles in 5 s instead of 14, its train step in 15 s instead of 19, and a convolutional network
  trains as fast as at level 2; level 0 compiles faster still but runs 10x slower); the tests check
  behaviour, not speed, and benchmarks/ runs at XLA's default level;
- shares one persistent JAX compilation cache, new for each session, so a program compiled by one test or
  command is loaded, not recompiled, by the next (the trainer tests compile the same train step many times).
Set JAXGEN_TEST_FULL_COMPILE=1 to run the suite with XLA's defaults and no cache."""
import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAXGEN_FEATURE_CACHE", tempfile.mkdtemp(prefix="jaxgen_feature_cache_"))

if os.environ.get("JAXGEN_TEST_FULL_COMPILE", "0") in ("", "0"):
  if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=1").strip()
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="jaxgen_jax_cache_"))
  # Under pytest-xdist (`-n 2`) each worker keeps a cache of its own: JAX writes entries in place, and a
  # worker must not read an entry that another is still writing.
  if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ["JAX_COMPILATION_CACHE_DIR"].endswith(
      os.environ["PYTEST_XDIST_WORKER"]):
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(os.environ["JAX_COMPILATION_CACHE_DIR"],
                                                           os.environ["PYTEST_XDIST_WORKER"])

from jaxgen.train.runtime import set_xla_cpu_flags  # noqa: E402  (before JAX starts)

set_xla_cpu_flags()
