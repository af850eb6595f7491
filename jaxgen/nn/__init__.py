"""Shared networks and layers."""
from jaxgen.nn.embeddings import sinusoidal_embedding
from jaxgen.nn.unet import UNet, check_unet_config, count_params

__all__ = ["UNet", "check_unet_config", "count_params", "sinusoidal_embedding"]
