"""Coupled GANs (Liu & Tuzel 2016) in the GAN family: the two domains, their validation and their unpaired data.

A CoGAN is the GAN family (jaxgen.gan.gan.GAN) with model.kind='cogan': its pair generator draws both domains'
images side by side from one latent, (H, 2W, C), and its pair discriminator scores each half with its domain's
D, logits (B, 2) (jaxgen.nn.cogan; the first G layers and the last D layers tied). Nothing else in the family
changes: a real batch is a batch of such (H, 2W, C) images whose halves are UNPAIRED domain-A and domain-B
images, made by `cogan_data_fn` (the family's data function, `gan_data_fn`).

Domain A is config.data.name; domain B (config.cogan.domain_b):
  'negative'         the same data set's images inverted, 255 - image (the paper's digits and negatives)
  'shapes_outlined'  the outlined rendering of `shapes` (data.name 'shapes' or 'shapes_tiny'; the data sets
                     'shapes_outlined' / 'shapes_outlined_tiny': the same scenes, each shape an outline)
Unpaired: domain A's examples come from the first half of the training split (TFDS 'train[:50%]'), domain
B's from the second half ('train[50%:]'), each in its own order (seeds config.seed and config.seed +
B_SEED_OFFSET), as in the paper, so no pair of a batch ever shows the same example (or the same scene), and the
batch of step s is a pure function of (seed, s) (jaxgen.data.tfds.make_train_iterator: exact resume).
"""
from __future__ import annotations

DOMAINS_B = ("negative", "shapes_outlined")
OUTLINED = {"shapes": "shapes_outlined", "shapes_tiny": "shapes_outlined_tiny"}
HALVES = ("[:50%]", "[50%:]")        # domain A's and domain B's part of the training split
B_SEED_OFFSET = 0xB


def domain_b(config) -> str:
  return config.get("cogan", {}).get("domain_b", "negative") if "cogan" in config else "negative"


def domain_b_dataset(config) -> str:
  """The data set domain B's images come from (its feature space grades the B halves)."""
  return OUTLINED[config.data.name] if domain_b(config) == "shapes_outlined" else config.data.name


def to_domain_b(images, kind: str):
  """Domain B's images from the data set's (uint8): 'negative' inverts, 'shapes_outlined' is as stored."""
  return 255 - images if kind == "negative" else images


from_domain_b = to_domain_b          # the negative is its own inverse: B halves graded in domain A's space


def validate_cogan(config) -> None:
  """cogan.domain_b against data.name; data.pipeline 'memory'; no 'sample_metrics' (a sample is a pair of
  images; 'pair_agreement' grades each half in its own domain)."""
  from jaxgen.data.specs import get_dataset_spec
  kind = domain_b(config)
  if kind not in DOMAINS_B:
    raise ValueError(f"cogan.domain_b={kind!r}; choose one of: {', '.join(DOMAINS_B)}")
  if kind == "shapes_outlined" and config.data.name not in OUTLINED:
    raise ValueError(f"cogan.domain_b='shapes_outlined' draws the scenes of data.name={config.data.name!r}; it "
                     f"needs data.name in: {', '.join(OUTLINED)}")
  if config.data.get("pipeline", "memory") != "memory":
    raise ValueError(f"data.pipeline={config.data.pipeline!r}: model.kind='cogan' reads its two domains through "
                     "the 'memory' pipeline")
  if "sample_metrics" in config.get("evals", ()):
    raise ValueError("evals has 'sample_metrics', but model.kind='cogan' samples image pairs (H, 2W, C); use "
                     "'pair_agreement' (each half graded in its own domain, and how often a pair agrees)")
  get_dataset_spec(domain_b_dataset(config))


def cogan_data_fn(config):
  """start_step -> iterator of {'image': uint8 (B, H, 2W, C)}: left an example of the first half of the
  training split, right domain B's version of an example of the second half, in independent orders."""
  import numpy as np
  from jaxgen.data import tfds
  from jaxgen.data.specs import get_dataset_spec
  kind = domain_b(config)
  names = (config.data.name, domain_b_dataset(config))
  for name in dict.fromkeys(names):
    tfds.prepare(name, config.data.get("data_dir"), config.data.get("download", True))

  def iterator(start_step):
    its = []
    for i, (name, half) in enumerate(zip(names, HALVES)):
      data = config.data.copy_and_resolve_references()
      with data.unlocked():
        data.name = name
      split = get_dataset_spec(name).train_split + half
      its.append(tfds.make_train_iterator(data, global_batch_size=config.batch_size,
                                          seed=config.seed + i * B_SEED_OFFSET, start_step=start_step, split=split))
    for a, b in zip(*its):
      yield {"image": np.concatenate([a["image"], to_domain_b(b["image"], kind)], axis=2)}
  return iterator


def gan_data_fn(config):
  """The GAN family's data function (jaxgen.registry): CoGAN's unpaired pairs for model.kind='cogan', else the
  one data door (jaxgen.data.train_data_fn)."""
  if config.model.kind == "cogan":
    return cogan_data_fn(config)
  from jaxgen.data import train_data_fn
  return train_data_fn(config)
