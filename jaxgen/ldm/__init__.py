"""Latent diffusion (Rombach et al. 2022): the first-stage KL autoencoder (jaxgen.nn.autoencoder_kl) and its
diffusers converter (jaxgen.ldm.convert_diffusers). The training family, latent scaling, second stage and
conditioning are still to come (docs/latent_diffusion.md)."""
