"""The library stands without the repository's experiments/: no module under jaxgen/ imports it, and the DDPM's
default config (what the diffusers converter builds a run from) is the library's, the experiment's 'paper'
preset equal to it."""
import os
import re

import jaxgen
from jaxgen.diffusion.config import ddpm_config
from jaxgen.diffusion.diffusers_config import run_config


def test_no_library_module_imports_experiments():
  root = os.path.dirname(jaxgen.__file__)
  bad = []
  for directory, _, files in os.walk(root):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(directory, name)
        for i, line in enumerate(open(path), 1):
          if re.match(r"\s*(from|import)\s+experiments\b", line):
            bad.append(f"{os.path.relpath(path, root)}:{i}")
  assert not bad, f"library modules import experiments/: {bad}"


def test_the_converter_and_the_experiment_start_from_the_library_ddpm_config():
  from experiments import ddpm_cifar
  paper = ddpm_config("paper")
  assert paper.to_dict() == ddpm_cifar.get_config("paper").to_dict()
  converted = run_config({"block_out_channels": [32, 64], "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
                          "up_block_types": ["AttnUpBlock2D", "UpBlock2D"], "norm_num_groups": 8, "attention_head_dim": None,
                          "sample_size": 32})
  assert converted.family == "ddpm" and converted.preset == "paper" and converted.data.name == "cifar10"
  assert converted.model.ch == 32 and tuple(converted.model.ch_mult) == (1, 2)
  assert converted.optim.to_dict() == paper.optim.to_dict()
