"""The diffusers converter is exact: a tiny diffusers UNet2DModel of google/ddpm-cifar10-32's structure, filled
with seeded weights (tests/fixtures/seeded.py, regenerated here with numpy and written as safetensors with numpy;
no weights committed), gives the outputs saved by tests/fixtures/make_diffusers_fixture.py through the real
command (in-process), load_run and jaxgen's U-Net. The full-size key set maps onto the default UNet() without
any weights, and what cannot be mapped is refused naming the value."""
import json
import os
import sys

import jax
import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
sys.path.insert(0, FIXTURES)
from seeded import seeded_state_dict  # noqa: E402

from jaxgen.diffusion import convert_diffusers as cd  # noqa: E402
from jaxgen.diffusion import diffusers_config as dc  # noqa: E402
from jaxgen.diffusion.build import unet_kwargs  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from jaxgen.nn.unet import UNet, count_params  # noqa: E402

TINY = np.load(os.path.join(FIXTURES, "diffusers_fixture.npz"))
TINY_CONFIG = json.loads(str(TINY["config"]))
TINY_SHAPES = {k: tuple(s) for k, s in json.loads(str(TINY["keys"]))}
CIFAR10 = json.load(open(os.path.join(FIXTURES, "diffusers_cifar10_keys.json")))
CIFAR10_SHAPES = {k: tuple(s) for k, s in CIFAR10["keys"]}
# google/ddpm-cifar10-32's scheduler_config.json as on the Hub.
CIFAR10_SCHEDULER = {"_class_name": "DDPMScheduler", "_diffusers_version": "0.1.1", "beta_end": 0.02,
                     "beta_schedule": "linear", "beta_start": 0.0001, "clip_sample": True,
                     "num_train_timesteps": 1000, "trained_betas": None, "variance_type": "fixed_large"}
def input_images():
  """make_diffusers_fixture.input_images: the same numpy call."""
  x = (np.random.default_rng(1).random((len(TINY["timesteps"]), 32, 32, 3)) * 2.0 - 1.0).astype(np.float32)
  assert np.isclose(x.astype(np.float64).sum(), float(TINY["input_sum"]), rtol=0, atol=1e-6), "numpy's stream changed"
  return x


def write_source(directory, *, config=None, weights=True, scheduler=True):
  """A Hub-like checkout: DIR/config.json, DIR/diffusion_pytorch_model.safetensors (the seeded tiny weights,
  written with numpy) and DIR/scheduler_config.json."""
  directory.mkdir(parents=True, exist_ok=True)
  (directory / "config.json").write_text(json.dumps(TINY_CONFIG if config is None else config))
  if scheduler:
    (directory / "scheduler_config.json").write_text(json.dumps(dict(CIFAR10_SCHEDULER, num_train_timesteps=50,
                                                                     variance_type="fixed_small")))
  if weights:
    save_file(seeded_state_dict(TINY_SHAPES, int(TINY["seed"])), str(directory / cd.WEIGHTS_FILE),
                         metadata={"format": "pt"})
  return directory


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """The tiny model converted by the command's entry point and restored by load_run."""
  from jaxgen.train.run import load_run
  root = tmp_path_factory.mktemp("convert")
  src = write_source(root / "ddpm-tiny")
  dst = root / "run"
  import contextlib
  import io
  err = io.StringIO()
  with contextlib.redirect_stderr(err):
    assert cd.main([str(src), str(dst)]) == 0
  # a progress line as each stage starts, on stderr
  stages = [line.split(" | ")[:2] for line in err.getvalue().splitlines()]
  assert stages == [["convert 1/3", f"reading {src / cd.WEIGHTS_FILE} (0.4 MiB)"],
                    ["convert 2/3", "converting 268 tensors into the family's parameters and checking them"],
                    ["convert 3/3", f"writing the step-0 checkpoint to {dst / 'checkpoints'}"]], err.getvalue()
  return src, dst, load_run(str(dst))


def test_seeded_tiny_model_reproduces_diffusers(converted):
  _, _, run = converted
  net = run.family.network
  model = run.config.model
  # The family's U-Net is the one config.model describes (the build code passes every field).
  for name, want in unet_kwargs(model).items():
    have = getattr(net, name)
    assert (tuple(have) if isinstance(have, (list, tuple)) else have) == want, name
  x, t = input_images(), TINY["timesteps"].astype(np.int32)
  out = np.asarray(jax.jit(lambda p, x, t: net.apply({"params": p}, x, t, train=False))(run.params, x, t))
  ref = TINY["outputs"]
  assert np.abs(ref).mean() > 0.1 and np.isfinite(ref).all()
  err = np.abs(out - ref).max()
  print(f"max abs error vs diffusers {err:.2e} (mean |y| {np.abs(ref).mean():.3f})")
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)


def test_converted_run_directory(converted):
  src, dst, run = converted
  assert run.step == 0 and run.experiment == "experiments.ddpm_cifar" and run.preset == "paper"
  jax.tree.map(np.testing.assert_array_equal, run.state.params, run.state.ema_params)
  assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves(run.state.opt_state) if np.ndim(x) > 0)
  m, d = run.config.model, run.config.diffusion
  assert (m.ch, tuple(m.ch_mult), m.num_res_blocks, tuple(m.attn_resolutions), m.num_groups) == (8, (1, 2, 2), 2,
                                                                                                   (16,), 4)
  assert (m.norm_eps, m.flip_sin_to_cos, m.freq_shift, m.downsample_padding, m.dropout) == (1e-6, False, 1.0, 0, 0.0)
  want = dict(num_timesteps=50, beta_schedule="linear", beta_start=1e-4, beta_end=0.02, variance="fixed_small",
              clip_x0=True, prediction="eps")
  assert {k: d[k] for k in want} == want
  record = json.load(open(dst / "config.json"))
  conv = record["converted_from"]
  assert conv["source"] == str(src) and conv["weights"] == str(src / cd.WEIGHTS_FILE)
  assert conv["scheduler_config"] == str(src / "scheduler_config.json") and conv["num_params"] == 103_875
  # A second conversion into the same run directory is refused.
  with pytest.raises(FileExistsError, match="already holds a run"):
    cd.convert(str(src), str(dst))


def test_converted_run_samples_as_experiments_sample_does(converted, tmp_path):
  """experiments.sample's path (draw_samples over load_run's family and EMA params) on the converted run."""
  from jaxgen.eval.sample_metrics import draw_samples
  _, _, run = converted
  images = draw_samples(run.family, run.params, 2, str(tmp_path / "parts"), chunk=2,
                        options=dict(sampler="ddim", steps=2), log=lambda m: None)
  assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8


def test_full_size_keys_map_onto_the_default_unet():
  model = dc.model_config_from_diffusers(CIFAR10["config"])
  assert model == dict(ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,), num_groups=32,
                       norm_eps=1e-6, flip_sin_to_cos=False, freq_shift=1.0, downsample_padding=0)
  default = UNet()
  assert all(getattr(default, k) == v for k, v in unet_kwargs(model).items() if k != "dropout")
  shapes = cd.converted_shapes(CIFAR10_SHAPES, model)
  assert shapes == cd.expected_param_shapes({**model, "dropout": 0.1})
  assert sum(int(np.prod(s)) for s in shapes.values()) == CIFAR10["num_params"] == 35_746_307
  assert shapes[("up_3_block_2", "conv1", "kernel")] == (3, 3, 512, 256)     # up_blocks.0: the lowest resolution
  assert shapes[("down_1_block_0", "nin_shortcut", "kernel")] == (128, 256)
  assert shapes[("down_1_attn_1", "proj_out", "kernel")] == (256, 256)
  # Older diffusers' attention names map the same way.
  old = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
  renamed = {next((k.replace(f".{a}.", f".{b}.") for a, b in old.items() if f".{a}." in k), k): s
             for k, s in CIFAR10_SHAPES.items()}
  assert renamed != CIFAR10_SHAPES and cd.converted_shapes(renamed, model) == shapes
  assert count_params(jax.eval_shape(lambda: default.init(jax.random.PRNGKey(0), np.zeros((1, 32, 32, 3)),
                                                          np.zeros((1,), np.int32), train=False))) == 35_746_307


def test_state_dict_that_does_not_fit_is_named():
  model = dc.model_config_from_diffusers(CIFAR10["config"])
  shapes = dict(CIFAR10_SHAPES)
  shapes["down_blocks.1.attentions.0.query.weight"] = (256, 256)        # twice: to_q and query
  shapes["class_embedding.weight"] = (10, 512)                           # no place in the U-Net
  shapes["up_blocks.0.resnets.3.conv1.weight"] = (256, 512, 3, 3)        # a resnet the U-Net does not have
  del shapes["conv_out.bias"]
  shapes["mid_block.resnets.0.conv1.weight"] = (256, 256, 1, 1)
  with pytest.raises(ValueError) as info:
    cd.converted_shapes(shapes, model)
  message = str(info.value)
  assert "1 unknown keys: class_embedding.weight" in message
  assert "1 keys used twice: down_blocks.1.attentions.0.query.weight and down_blocks.1.attentions.0.to_q.weight" \
      in message
  assert "1 missing parameters: conv_out/bias" in message
  assert "1 unexpected keys: up_blocks.0.resnets.3.conv1.weight (-> up_3_block_3/conv1/kernel)" in message
  assert "mid_block.resnets.0.conv1.weight (256, 256, 1, 1) -> mid_block_1/conv1/kernel needs (3, 3, 256, 256)" \
      in message


def test_defaults_match_the_installed_diffusers():
  listed = lambda d: {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
  assert listed(dc.UNET2D_DEFAULTS) == CIFAR10["unet2dmodel_defaults"]
  assert listed(dc.DDPM_SCHEDULER_DEFAULTS) == CIFAR10["ddpmscheduler_defaults"]


@pytest.mark.parametrize("field, value, allowed", [
    ("down_block_types", ["DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
     "allowed: 'DownBlock2D' and 'AttnDownBlock2D'"),
    ("up_block_types", ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
     "i.e. ['UpBlock2D', 'UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D']"),
    ("attention_head_dim", 8, "allowed: null, or the channel count of every attention ([256]), i.e. one head"),
    ("time_embedding_type", "fourier", "allowed: 'positional'"),
    ("act_fn", "gelu", "allowed: 'silu'"),
    ("num_class_embeds", 10, "class embeddings are not supported"),
    ("block_out_channels", [128, 192, 256, 256], "multiples of the first entry 128"),
    ("sample_size", 64, "allowed: 32"),
    ("resnet_time_scale_shift", "scale_shift", "allowed: 'default'"),
])
def test_unmappable_model_configs_are_refused(field, value, allowed):
  with pytest.raises(ValueError) as info:
    dc.model_config_from_diffusers(dict(CIFAR10["config"], **{field: value}))
  assert f"config.json: {field}={value!r} cannot be converted" in str(info.value)
  assert allowed in str(info.value)


def test_leaving_fields_out_takes_diffusers_defaults():
  config = dict(CIFAR10["config"])
  del config["attention_head_dim"]            # diffusers' default: 8, i.e. 32 heads
  with pytest.raises(ValueError, match="attention_head_dim=8 cannot be converted"):
    dc.model_config_from_diffusers(config)


def test_scheduler_config():
  assert dc.diffusion_config_from_scheduler(CIFAR10_SCHEDULER) == dict(
      num_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02, variance="fixed_large",
      clip_x0=True, prediction="eps")
  assert dc.diffusion_config_from_scheduler(dict(CIFAR10_SCHEDULER, prediction_type="v_prediction"))[
      "prediction"] == "v"
  for field, value, allowed in [("beta_schedule", "squaredcos_cap_v2", "allowed: 'linear'"),
                                ("variance_type", "learned_range", "allowed: 'fixed_large', 'fixed_small'"),
                                ("prediction_type", "flow", "allowed: 'epsilon', 'sample', 'v_prediction'")]:
    with pytest.raises(ValueError) as info:
      dc.diffusion_config_from_scheduler(dict(CIFAR10_SCHEDULER, **{field: value}))
    assert f"scheduler_config.json: {field}={value!r} cannot be converted" in str(info.value)
    assert allowed in str(info.value)


def test_missing_files_name_the_path_and_the_download(tmp_path, capsys):
  src = tmp_path / "empty"
  src.mkdir()
  with pytest.raises(FileNotFoundError) as info:
    cd.convert(str(src), str(tmp_path / "run"))
  assert str(src / "config.json") in str(info.value) and cd.HUB_URL in str(info.value)

  src = write_source(tmp_path / "no_weights", weights=False)
  with pytest.raises(FileNotFoundError) as info:
    cd.convert(str(src), str(tmp_path / "run"))
  assert str(src / cd.WEIGHTS_FILE) in str(info.value) and cd.HUB_URL in str(info.value)

  (src / cd.PICKLE_FILE).write_bytes(b"\x80\x02")     # only the PyTorch pickle
  with pytest.raises(ValueError, match=r"diffusion_pytorch_model\.bin is a PyTorch pickle.*download "
                     r"diffusion_pytorch_model\.safetensors from https://huggingface.co/google/ddpm-cifar10-32"):
    cd.convert(str(src), str(tmp_path / "run"))

  # The command: one 'error:' line and exit status 2; nothing written.
  assert cd.main([str(tmp_path / "absent"), str(tmp_path / "run")]) == 2
  err = capsys.readouterr().err
  assert err.startswith(f"error: {tmp_path / 'absent'} does not exist") and cd.HUB_URL in err
  assert not (tmp_path / "run").exists()
  assert cd.main([str(tmp_path)]) == 2 and "usage:" in capsys.readouterr().err


def test_source_layouts(tmp_path):
  # A pipeline's directory: the model in unet/, the scheduler in scheduler/.
  src = write_source(tmp_path / "pipeline" / "unet", scheduler=False)
  (tmp_path / "pipeline" / "scheduler").mkdir()
  (tmp_path / "pipeline" / "scheduler" / "scheduler_config.json").write_text("{}")
  files = cd.find_source_files(str(tmp_path / "pipeline"))
  assert files == {"config": str(src / "config.json"), "weights": str(src / cd.WEIGHTS_FILE),
                   "scheduler": str(tmp_path / "pipeline" / "scheduler" / "scheduler_config.json")}
  # No scheduler config anywhere: the experiment's diffusion settings.
  src = write_source(tmp_path / "alone" / "model", scheduler=False)
  assert cd.find_source_files(str(src))["scheduler"] is None


def test_bad_config_is_refused_before_reading_weights(tmp_path):
  src = write_source(tmp_path / "src", config=dict(TINY_CONFIG, act_fn="mish"), weights=False)
  (src / cd.WEIGHTS_FILE).write_bytes(b"not read")
  with pytest.raises(ValueError, match="act_fn='mish' cannot be converted"):
    cd.convert(str(src), str(tmp_path / "run"))


def test_help_prints_the_usage_and_exits_0():
  import subprocess
  import sys
  proc = subprocess.run([sys.executable, "-m", "jaxgen.diffusion.convert_diffusers", "--help"], capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.startswith("usage: python -m jaxgen.diffusion.convert_diffusers SRC_DIR DST")
  assert "scheduler_config.json" in proc.stdout and cd.HUB_URL in proc.stdout and not proc.stderr.strip()
