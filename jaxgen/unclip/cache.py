"""CLIP embeddings cached once: the training data of a DDPM whose condition encoder (and codec) is a frozen CLIP.

With config.condition.cache=True, `clip_data_fn` restores the frozen CLIP part (the same one the step would use),
computes this process's training split once, in split order, through the condition encoder (the decoder's image
embeddings; the prior's text embeddings and token features) and, with codec.kind='clip_image', the unit image
embeddings the codec diffuses ('image_embedding', then 'image' is dropped from the batches). The batches carry
them beside the source features: the same examples in the same order as without the cache
(jaxgen.data.tfds.make_train_iterator(encode_split=...)), and the family skips the encoder
(jaxgen.diffusion.ddpm.DDPM._cond, codecs.ClipImageCodec.encode). Which is faster here (benchmarks/unclip_cache.py,
docs/unclip.md): the quick prior's step is 5% cheaper with the cache, which costs under 3 s to build; the quick
decoder's is not measurably cheaper. Needs data.pipeline='memory' and data.random_flip=False.
"""
from __future__ import annotations

import numpy as np


def clip_data_fn(config):
  import jax
  from jaxgen.data import tfds
  from jaxgen.data.specs import get_dataset_spec
  from jaxgen.diffusion.build import CLIP_PART, make_codec, make_conditioner
  from jaxgen.diffusion.codecs import ClipImageCodec
  from jaxgen.train.frozen import load_parts
  from jaxgen.train.logging import TaskProgress
  codec, parts = make_codec(config)
  conditioner, cparts = make_conditioner(config)
  trees, _ = load_parts({**parts, **cparts})
  params = {CLIP_PART: trees[CLIP_PART]}
  embeds_x0 = isinstance(codec, ClipImageCodec)

  def encode(p, batch):
    out = dict(conditioner.encode(p, batch))
    if embeds_x0:
      out["image_embedding"] = codec.clip.encode_images(p[CLIP_PART], batch["image"])
    return out
  encode = jax.jit(encode)
  memo = {}

  def encode_split(arrays, chunk=500):
    n = len(arrays["image"])
    if memo.get("n") != n:
      bar = TaskProgress(n, "CLIP cache: encoding the training split", "ex")
      parts_ = []
      for i in range(0, n, chunk):
        parts_.append(jax.tree.map(np.asarray, encode(params, {k: arrays[k][i:i + chunk]
                                                               for k in conditioner.inputs + ("image",)})))
        bar.update(min(chunk, n - i))
      memo.update(n=n, new={k: np.concatenate([q[k] for q in parts_]).astype(np.float32) for k in parts_[0]})
    return memo["new"], ("image",) if embeds_x0 else ()

  spec = get_dataset_spec(config.data.name)
  tfds.prepare(spec.name, config.data.get("data_dir"), config.data.get("download", True))
  return lambda start_step: tfds.make_train_iterator(config.data, global_batch_size=config.batch_size,
                                                     seed=config.seed, start_step=start_step,
                                                     encode_split=encode_split)
