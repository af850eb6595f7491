"""Shared pytest setup: keep JAX on the CPU with one device unless a test asks otherwise."""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
