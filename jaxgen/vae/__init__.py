"""Variational autoencoders (Kingma & Welling 2013) with the importance-weighted bound (Burda et al. 2015)."""
