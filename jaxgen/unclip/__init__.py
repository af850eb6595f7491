"""DALL-E 2 (unCLIP, Ramesh et al. 2022) on jaxgen's diffusion family (issue 26), built in pieces:
  the prior       the DDPM family with model.kind='prior_transformer' (jaxgen.nn.prior_transformer) over CLIP image
                  embeddings, conditioned on the caption's CLIP text embedding and token features;
  the decoder     the DDPM family's U-Net conditioned on a CLIP image embedding (model.embed_dim: timestep
                  embedding and context tokens of the shared cross-attention), embedding dropout for guidance;
  reranking       jaxgen.unclip.rerank: k candidates per caption, the one with the highest CLIP score kept.
"""
