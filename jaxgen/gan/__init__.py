"""GANs: losses, regularisers and the two-player step on the shared trainer."""
