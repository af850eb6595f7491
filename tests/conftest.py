"""Shared pytest setup: keep JAX on the CPU with one device unless a test asks otherwise; the CPU convolution
flag that every jaxgen command sets (jaxgen.train.runtime); one feature-network cache for the whole session
(tests and the commands they start share the networks trained for the smoke presets)."""
import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAXGEN_FEATURE_CACHE", tempfile.mkdtemp(prefix="jaxgen_feature_cache_"))

from jaxgen.train.runtime import set_xla_cpu_flags  # noqa: E402  (before JAX starts)

set_xla_cpu_flags()
