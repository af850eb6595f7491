"""jaxgen: a pure-functional JAX/Flax library of deep generative models."""

__version__ = "0.1.0"
