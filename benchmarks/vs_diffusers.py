r"""jaxgen against HuggingFace diffusers, side by side on this machine: the DDPM CIFAR-10 U-Net (35.7M params).

  python benchmarks/vs_diffusers.py [--torch_python /path/to/venv/bin/python] [--repeats 3] [--quick]

diffusers' `UNet2DModel` is built with the google/ddpm-cifar10-32 config (dropout 0.1 for training) and
jaxgen's U-Net with the identical shapes (jaxgen.diffusion.diffusers_config maps one config onto the other).
Two worker processes, one per framework, stay alive for the whole run, so each compiles once; the driver
alternates them row by row (A/B/A/B, `--repeats` times) and reports medians of:
  train b8 / train b32  the full train step: forward, backward, gradient clipping at 1.0, Adam (lr 2e-4), on
                        random images and timesteps (jaxgen's includes its EMA update as well)
  forward b64           one network pass (what one sampler step costs for 64 images)
  sample 16x100         ancestral sampling of 16 images with 100 steps (extrapolated to 1000 in the table)
  compile               jaxgen's compile time of each program / torch's first call
and the float32 matmul GFLOP/s (2048^3) of both frameworks in the same run. float32, eager PyTorch.

torch and diffusers are never dependencies of jaxgen: install them in the same environment with
`pip install -e .[bench]`, or in another one and pass its interpreter with --torch_python.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CIFAR10_CONFIG = {
    "act_fn": "silu", "attention_head_dim": None, "block_out_channels": [128, 256, 256, 256],
    "center_input_sample": False, "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "downsample_padding": 0, "flip_sin_to_cos": False, "freq_shift": 1, "in_channels": 3, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-06, "norm_num_groups": 32, "out_channels": 3, "sample_size": 32,
    "time_embedding_type": "positional", "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
}
TRAIN_STEPS, FORWARD_REPS, SAMPLE_NUM, SAMPLE_STEPS = 3, 3, 16, 100
if os.environ.get("JAXGEN_BENCH_TINY"):     # --tiny: a check that the script runs, in seconds (not a benchmark)
  CIFAR10_CONFIG = dict(CIFAR10_CONFIG, block_out_channels=[8, 16, 16], norm_num_groups=4,
                        down_block_types=["DownBlock2D", "AttnDownBlock2D", "DownBlock2D"],
                        up_block_types=["UpBlock2D", "AttnUpBlock2D", "UpBlock2D"])
  TRAIN_STEPS, FORWARD_REPS, SAMPLE_STEPS = 1, 1, 5


def _median_time(fn, reps):
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


# -- the jaxgen worker -------------------------------------------------------------------------------------------

def jax_worker():
  sys.path.insert(0, ROOT)
  from jaxgen.train.runtime import configure_jax
  from experiments.ddpm_cifar import get_config
  config = get_config("paper")
  configure_jax(config)
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jaxgen.diffusion.build import make_ddpm
  from jaxgen.diffusion.diffusers_config import model_config_from_diffusers
  from jaxgen.train import parallel, trainer
  config.model.update(model_config_from_diffusers(CIFAR10_CONFIG))
  config.model.dropout = 0.1
  config.optim.update(learning_rate=2e-4, warmup_steps=0, grad_clip=1.0)
  config.diffusion.update(sampler="ancestral", sample_steps=SAMPLE_STEPS)
  family = make_ddpm(config)
  mesh = parallel.make_mesh(config)
  rng = np.random.default_rng(0)
  compiled, state = {}, None

  def batch(b):
    return parallel.global_batch({"image": rng.integers(0, 256, (b, 32, 32, 3), dtype=np.uint8)}, mesh)

  def train_program(b):
    nonlocal state
    if state is None:
      state = trainer.create_train_state(family, config, mesh, batch(b))
    if b not in compiled:
      t0 = time.perf_counter()
      compiled[b] = trainer.make_train_step(family, mesh).lower(state, batch(b)).compile()
      return time.perf_counter() - t0
    return 0.0

  net = jax.jit(lambda p, x, t: family.network_fn(p)(x, t))
  sampler = jax.jit(lambda p, key: family.sample(p, key, SAMPLE_NUM))
  mm = jax.jit(lambda a: a @ a)

  def handle(cmd):
    nonlocal state
    op = cmd["op"]
    if op == "compile":
      out = {f"train b{b}": train_program(b) for b in (8, 32)}
      x = jnp.zeros((64, 32, 32, 3)); t = jnp.zeros((64,), jnp.int32)
      t0 = time.perf_counter(); net.lower(state.params, x, t).compile(); out["forward b64"] = time.perf_counter() - t0
      t0 = time.perf_counter(); sampler.lower(state.params, jax.random.PRNGKey(0)).compile()
      out["sample 16x100"] = time.perf_counter() - t0
      return out
    if op == "train":
      b = cmd["batch"]
      data = batch(b)
      state, _ = compiled[b](state, data)
      jax.block_until_ready(state)

      def one():
        nonlocal state
        state, m = compiled[b](state, data)
        jax.block_until_ready((state, m))
      return _median_time(one, TRAIN_STEPS)
    if op == "forward":
      x = jnp.asarray(rng.standard_normal((64, 32, 32, 3)), jnp.float32)
      t = jnp.asarray(rng.integers(0, 1000, 64), jnp.int32)
      net(state.params, x, t).block_until_ready()
      return _median_time(lambda: net(state.params, x, t).block_until_ready(), FORWARD_REPS)
    if op == "sample":
      sampler(state.params, jax.random.PRNGKey(1)).block_until_ready()
      return _median_time(lambda: sampler(state.params, jax.random.PRNGKey(2)).block_until_ready(), 1)
    if op == "matmul":
      a = jax.random.normal(jax.random.PRNGKey(0), (2048, 2048), jnp.float32)
      mm(a).block_until_ready()
      return 2 * 2048 ** 3 / min(_median_time(lambda: mm(a).block_until_ready(), 1) for _ in range(5)) / 1e9
    if op == "info":
      return {"framework": f"jax {jax.__version__}", "params": int(sum(x.size for x in jax.tree.leaves(state.params)))
              if state is not None else None, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}
    raise ValueError(op)

  _serve(handle)


# -- the diffusers worker ----------------------------------------------------------------------------------------

def torch_worker():
  import torch
  from diffusers import DDPMScheduler, UNet2DModel
  torch.manual_seed(0)
  model = UNet2DModel(**CIFAR10_CONFIG, dropout=0.1)
  opt = torch.optim.Adam(model.parameters(), lr=2e-4)
  sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                        variance_type="fixed_large", clip_sample=True)
  alphas = sched.alphas_cumprod

  def train_step(b):
    model.train()
    x0 = torch.rand(b, 3, 32, 32) * 2 - 1
    t = torch.randint(0, 1000, (b,))
    noise = torch.randn_like(x0)
    a = alphas[t].view(-1, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
    loss = torch.nn.functional.mse_loss(model(xt, t).sample, noise)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()

  @torch.no_grad()
  def forward():
    model.eval()
    model(torch.randn(64, 3, 32, 32), torch.randint(0, 1000, (64,)))

  @torch.no_grad()
  def sample():
    model.eval()
    sched.set_timesteps(SAMPLE_STEPS)
    x = torch.randn(SAMPLE_NUM, 3, 32, 32)
    for t in sched.timesteps:
      x = sched.step(model(x, t).sample, t, x).prev_sample

  def handle(cmd):
    op = cmd["op"]
    if op == "compile":                      # eager: the first call's time
      out = {}
      for b in (8, 32):
        t0 = time.perf_counter(); train_step(b); out[f"train b{b}"] = time.perf_counter() - t0
      t0 = time.perf_counter(); forward(); out["forward b64"] = time.perf_counter() - t0
      return out
    if op == "train":
      train_step(cmd["batch"])
      return _median_time(lambda: train_step(cmd["batch"]), TRAIN_STEPS)
    if op == "forward":
      forward()
      return _median_time(forward, FORWARD_REPS)
    if op == "sample":
      return _median_time(sample, 1)
    if op == "matmul":
      a = torch.randn(2048, 2048)
      a @ a
      return 2 * 2048 ** 3 / min(_median_time(lambda: a @ a, 1) for _ in range(5)) / 1e9
    if op == "info":
      import diffusers
      return {"framework": f"torch {torch.__version__}, diffusers {diffusers.__version__}",
              "params": sum(p.numel() for p in model.parameters()), "threads": torch.get_num_threads()}
    raise ValueError(op)

  _serve(handle)


def _serve(handle):
  print(json.dumps({"ready": True}), flush=True)
  for line in sys.stdin:
    cmd = json.loads(line)
    try:
      print(json.dumps({"result": handle(cmd)}), flush=True)
    except Exception as e:  # pylint: disable=broad-except
      print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


# -- the driver --------------------------------------------------------------------------------------------------

class Worker:
  def __init__(self, python, kind):
    env = dict(os.environ, PYTHONPATH=ROOT)
    self.proc = subprocess.Popen([python, os.path.abspath(__file__), f"--worker={kind}"], cwd=ROOT, env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    self.kind = kind
    self._read()

  def _read(self):
    while True:
      line = self.proc.stdout.readline()
      if not line:
        raise RuntimeError(f"the {self.kind} worker exited (code {self.proc.wait()})")
      if line.startswith("{"):
        msg = json.loads(line)
        if "error" in msg:
          raise RuntimeError(f"{self.kind} worker: {msg['error']}")
        return msg.get("result")

  def __call__(self, **cmd):
    self.proc.stdin.write(json.dumps(cmd) + "\n")
    self.proc.stdin.flush()
    return self._read()

  def close(self):
    self.proc.stdin.close()
    self.proc.wait(timeout=60)


def _cpu_model():
  try:
    for line in open("/proc/cpuinfo"):
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown CPU"


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--worker", choices=("jax", "torch"))
  p.add_argument("--torch_python", default=sys.executable)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--rows", default="train8,train32,forward64,sample")
  p.add_argument("--tiny", action="store_true", help="a tiny U-Net and few steps: checks that the script runs")
  a = p.parse_args()
  if a.tiny:
    os.environ["JAXGEN_BENCH_TINY"] = "1"
  if a.worker == "jax":
    return jax_worker()
  if a.worker == "torch":
    return torch_worker()
  check = subprocess.run([a.torch_python, "-c", "import torch, diffusers"], capture_output=True)
  if check.returncode:
    sys.exit("error: torch and diffusers are not importable by " + a.torch_python + ": install them with "
             "`pip install -e .[bench]` or pass --torch_python=/path/to/an/environment/with/them/bin/python")
  jx, th = Worker(sys.executable, "jax"), Worker(a.torch_python, "torch")
  try:
    compile_j, compile_t = jx(op="compile"), th(op="compile")

    rows = {"train8": ("train step, batch 8", dict(op="train", batch=8), 8),
            "train32": ("train step, batch 32", dict(op="train", batch=32), 32),
            "forward64": ("network forward, batch 64", dict(op="forward"), 64),
            "sample": (f"sampling {SAMPLE_NUM} images, {SAMPLE_STEPS} ancestral steps", dict(op="sample"),
                       SAMPLE_NUM)}
    results = {k: {"jax": [], "torch": []} for k in a.rows.split(",")}
    mm = {"jax": [], "torch": []}
    for r in range(a.repeats):                      # A/B/A/B: every row alternates, every repeat
      for k in results:
        order = (jx, th) if r % 2 == 0 else (th, jx)
        for w in order:
          results[k][w.kind].append(w(**rows[k][1]))
          print(f"  repeat {r + 1}/{a.repeats} {k} {w.kind}: {results[k][w.kind][-1]:.3f} s", file=sys.stderr,
                flush=True)
      for w in (jx, th):
        mm[w.kind].append(w(op="matmul"))
    info_j, info_t = jx(op="info"), th(op="info")
  finally:
    jx.close()
    th.close()
  print(f"\n{_cpu_model()}, {os.cpu_count()} cores; {info_j['framework']} (XLA_FLAGS={info_j['XLA_FLAGS']!r}) vs "
        f"{info_t['framework']} ({info_t['threads']} threads); float32; U-Net {info_t['params']:,} params (diffusers) "
        f"/ {info_j['params']:,} (jaxgen); medians of {a.repeats} alternating repeats\n")
  print("| row | jaxgen s | diffusers s | jaxgen img/s | diffusers img/s | jaxgen / diffusers (speed) | jaxgen compile s | torch first call s |")
  print("|---|---:|---:|---:|---:|---:|---:|---:|")
  keys = {"train8": "train b8", "train32": "train b32", "forward64": "forward b64", "sample": "sample 16x100"}
  for k, v in results.items():
    name, _, n = rows[k]
    j, t = statistics.median(v["jax"]), statistics.median(v["torch"])
    extra = (f" (x{1000 // SAMPLE_STEPS} for 1000 steps: {1000 // SAMPLE_STEPS * j:.0f} / "
             f"{1000 // SAMPLE_STEPS * t:.0f} s)") if k == "sample" else ""
    print(f"| {name}{extra} | {j:.3f} | {t:.3f} | {n / j:.2f} | {n / t:.2f} | **{t / j:.2f}** | "
          f"{compile_j.get(keys[k], 0):.1f} | {compile_t.get(keys[k], float('nan')):.1f} |")
  print(f"| matmul 2048^3 float32, GFLOP/s | {statistics.median(mm['jax']):.0f} | {statistics.median(mm['torch']):.0f} "
        f"| | | {statistics.median(mm['jax']) / statistics.median(mm['torch']):.2f} | | |")


if __name__ == "__main__":
  main()
