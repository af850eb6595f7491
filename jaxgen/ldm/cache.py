"""Latents cached once: the training data of a DDPM on a frozen first stage, encoded before training.

With config.codec.cache=True (and codec.kind='frozen_autoencoder'), `ddpm_data_fn` restores the first stage
(the same frozen part the step would use), encodes this process's training images once, in split order, into
their posterior means (unscaled), and the batches carry them as 'latent' instead of 'image': the same examples
in the same order as without the cache (jaxgen.data.tfds.make_train_iterator(encode_images=...)), and the
codec skips the encoder (jaxgen.diffusion.codecs.FrozenAutoencoderCodec.encode). Without it, every step
encodes its batch. Which is faster (benchmarks/ldm_vs_pixel.py, docs/latent_diffusion.md): on shapes (f = 2)
the cached step is 7-10% cheaper and the one-off encoding of the 20,000 training images costs about as much as
~1,000-1,600 steps save, so the cache pays from about that length on (the paper preset's 400k steps), not below.
Held in memory: 20,000 latents of 16x16x4 are 82 MB. Needs data.pipeline='memory' and data.random_flip=False.
"""
from __future__ import annotations


def ddpm_data_fn(config):
  """The DDPM family's data_fn: jaxgen.data.train_data_fn, or with codec.cache the cached latents, or with
  condition.cache a frozen CLIP's cached embeddings (jaxgen.unclip.cache)."""
  from jaxgen.data import train_data_fn
  from jaxgen.diffusion.build import codec_settings, condition_settings
  if condition_settings(config)["cache"]:
    from jaxgen.unclip.cache import clip_data_fn
    return clip_data_fn(config)
  cs = codec_settings(config)
  if cs["kind"] != "frozen_autoencoder" or not cs["cache"]:
    return train_data_fn(config)
  import jax
  from jaxgen.data import tfds
  from jaxgen.data.specs import get_dataset_spec
  from jaxgen.diffusion.build import make_codec
  from jaxgen.train.frozen import load_parts
  codec, parts = make_codec(config)
  trees, _ = load_parts(parts)
  params = trees[codec.part]
  encode = jax.jit(codec.autoencoder.encode_latents)
  memo = {}

  def encode_images(images, chunk=500):
    if "latents" not in memo or len(memo["latents"]) != len(images):
      from jaxgen.ldm.scaling import encode_in_chunks
      memo["latents"] = encode_in_chunks(encode, params, images, chunk, "latent cache: encoding the training split")
    return memo["latents"]

  spec = get_dataset_spec(config.data.name)
  tfds.prepare(spec.name, config.data.get("data_dir"), config.data.get("download", True))
  return lambda start_step: tfds.make_train_iterator(config.data, global_batch_size=config.batch_size,
                                                     seed=config.seed, start_step=start_step,
                                                     encode_images=encode_images)
