"""DALL-E 2 (unCLIP, Ramesh et al. 2022) on jaxgen's diffusion family (issue 26):
  the prior       the DDPM family with model.kind='prior_transformer' (jaxgen.nn.prior_transformer) over CLIP image
                  embeddings (codec.kind='clip_image'), conditioned on the caption's CLIP text embedding and token
                  features (condition.kind='clip_text'), both from a frozen CLIP run;
  the decoder     the DDPM family's U-Net conditioned on the CLIP image embedding of its training image
                  (condition.kind='clip_image'; model.embed_dim: timestep embedding and context tokens of the
                  shared cross-attention), embedding dropout for guidance;
  reranking       jaxgen.unclip.rerank: k candidates per caption, the ones with the highest CLIP score kept;
  generation      jaxgen.unclip.pipeline (load_unclip: captions -> images, variations), experiments.unclip_sample;
  measurements    jaxgen.unclip.evaluate (attribute agreement, CLIP score, FID / precision / recall; with and
                  without the prior, reranking k, guidance; variations). Experiment: experiments/unclip_shapes.py.
"""
