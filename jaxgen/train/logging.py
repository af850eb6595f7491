"""Run logging: progress lines on stdout, metrics.jsonl, TensorBoard events and config.json.

Only the main process (process 0) writes; the others get a writer whose methods do nothing. `TaskProgress` is the
progress line of every other long task (evaluations, sampling, feature passes, the sweep report, converters):
done/total, rate and ETA on stderr, at most every few seconds, with `format_hms` for durations as training's.
"""
from __future__ import annotations

import json
import logging as pylogging
import os
import sys
import time
from typing import Any, Callable, Dict, Optional

import numpy as np

log = pylogging.getLogger("jaxgen")


def _to_python(value):
  if isinstance(value, (np.ndarray, np.generic)):
    return value.item() if np.ndim(value) == 0 else value.tolist()
  return value


class MetricWriter:
  def __init__(self, workdir: str, *, enabled: bool = True, tensorboard: bool = True):
    self.workdir = workdir
    self.enabled = enabled
    self.metrics_path = os.path.join(workdir, "metrics.jsonl")
    self.tb_dir = os.path.join(workdir, "tensorboard")
    self._use_tb = enabled and tensorboard
    self._tb_writer = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)

  @property
  def _tb(self):
    if self._use_tb and self._tb_writer is None:        # opened on first use: after truncate_after
      self._tb_writer = _TensorBoard(self.tb_dir)
    return self._tb_writer

  def truncate_after(self, step: int) -> None:
    """Drop what an interrupted run logged after `step` (its last checkpoint), so a resumed run logs every step
    once: rows of metrics.jsonl and TensorBoard events with a larger step."""
    if not self.enabled:
      return
    if os.path.exists(self.metrics_path):
      with open(self.metrics_path) as f:
        lines = f.readlines()
      keep = [l for l in lines if l.strip() and json.loads(l).get("step", 0) <= step]
      if len(keep) != len(lines):
        tmp = self.metrics_path + ".tmp"
        with open(tmp, "w") as f:
          f.writelines(keep)
        os.replace(tmp, self.metrics_path)
    if self._use_tb and os.path.isdir(self.tb_dir):
      _truncate_event_files(self.tb_dir, step)

  def write_scalars(self, step: int, scalars: Dict[str, Any]) -> None:
    if not self.enabled:
      return
    row = {"step": int(step)}
    row.update({k: _to_python(v) for k, v in scalars.items()})
    with open(self.metrics_path, "a") as f:
      f.write(json.dumps(row) + "\n")
    if self._tb:
      self._tb.scalars(step, {k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float))})

  def write_image(self, step: int, name: str, image_uint8: np.ndarray) -> None:
    if self.enabled and self._tb:
      self._tb.image(step, name, image_uint8)

  def write_config(self, config_dict: Dict[str, Any]) -> None:
    if not self.enabled:
      return
    with open(os.path.join(self.workdir, "config.json"), "w") as f:
      json.dump(config_dict, f, indent=2, sort_keys=True, default=str)

  def flush(self):
    if self._tb_writer:
      self._tb_writer.flush()


class _TensorBoard:
  """TensorBoard event files through tf.summary (TF is already a dependency of the TFDS pipelines)."""

  def __init__(self, logdir: str):
    from jaxgen.data.tf_import import import_tf
    tf = import_tf()
    self._tf = tf
    self._writer = tf.summary.create_file_writer(logdir)

  def scalars(self, step, scalars):
    with self._writer.as_default(step=int(step)):
      for k, v in scalars.items():
        self._tf.summary.scalar(k, v)

  def image(self, step, name, image):
    image = np.asarray(image)
    if image.ndim == 2:
      image = image[..., None]
    with self._writer.as_default(step=int(step)):
      self._tf.summary.image(name, image[None])

  def flush(self):
    self._writer.flush()


def _truncate_event_files(logdir: str, step: int) -> None:
  """Rewrite every TensorBoard event file in `logdir` without the events of steps after `step`."""
  from jaxgen.data.tf_import import import_tf
  tf = import_tf()
  from tensorboard.compat.proto import event_pb2
  for name in sorted(os.listdir(logdir)):
    if not name.startswith("events.out.tfevents"):
      continue
    path = os.path.join(logdir, name)
    records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    keep = [r for r in records if event_pb2.Event.FromString(r).step <= step]
    if len(keep) == len(records):
      continue
    tmp = path + ".tmp"
    with tf.io.TFRecordWriter(tmp) as w:
      for r in keep:
        w.write(r)
    os.replace(tmp, path)


# The throughput's name and its unit in the progress line, by the data's kind (jaxgen.data.specs: 'image' or
# 'points'): perf/images_per_sec for images, perf/examples_per_sec for points.
THROUGHPUT = {"image": ("images_per_sec", "img/s"), "points": ("examples_per_sec", "ex/s")}


def throughput_name(kind: Optional[str]) -> str:
  """'images_per_sec' (images, and an unknown kind: the trainer's default) or 'examples_per_sec' (points)."""
  return THROUGHPUT.get(kind or "image", THROUGHPUT["image"])[0]


class Progress:
  """Throughput and ETA from wall time between reports (the first, compiling step is excluded). The throughput
  is named by the data's `kind` (THROUGHPUT: images_per_sec, examples_per_sec for points)."""

  def __init__(self, total_steps: int, start_step: int, batch_size: int, kind: Optional[str] = "image"):
    if kind is not None and kind not in THROUGHPUT:
      raise ValueError(f"kind={kind!r}; choose one of: {', '.join(THROUGHPUT)}")
    self.total = total_steps
    self.batch_size = batch_size
    self.rate_name = throughput_name(kind)
    self._t = None
    self._step = start_step

  def start(self, step: int) -> None:
    self._t, self._step = time.perf_counter(), step

  def report(self, step: int) -> Dict[str, float]:
    now = time.perf_counter()
    if self._t is None or step <= self._step:
      self.start(step)
      return {}
    steps_per_sec = (step - self._step) / (now - self._t)
    self._t, self._step = now, step
    return {"steps_per_sec": steps_per_sec, self.rate_name: steps_per_sec * self.batch_size,
            "eta_sec": (self.total - step) / max(steps_per_sec, 1e-9)}


def format_progress(step: int, total: int, metrics: Dict[str, float], rates: Dict[str, float]) -> str:
  """'step 1200/2000 | loss 0.07311 | 410.3 img/s | ETA 1:58' (every logged '*loss' metric is shown)."""
  parts = [f"step {step}/{total}"]
  parts += [f"{k[len('train/'):]} {v:.5f}" for k, v in metrics.items() if k.startswith("train/") and k.endswith("loss")]
  if rates:
    name, unit = next((n, u) for n, u in THROUGHPUT.values() if n in rates)
    parts += [f"{rates[name]:.1f} {unit}", f"ETA {format_hms(rates['eta_sec'])}"]
  return " | ".join(parts)


def format_hms(seconds: float) -> str:
  """'1:02:03' (or '2:03' under an hour) for a duration in seconds."""
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def print_progress(message: str) -> None:
  """A progress line on stderr (stdout stays for a command's result), from the main process only: a JAX process
  other than 0 says nothing (JAX is not imported for it, nor a backend started)."""
  jax = sys.modules.get("jax")
  if jax is not None and jax.distributed.is_initialized() and jax.process_index() != 0:   # never starts a backend
    return
  print(message, file=sys.stderr, flush=True)


def _rate_text(rate: float) -> str:
  return f"{rate:.0f}" if rate >= 1000 else f"{rate:.1f}" if rate >= 10 else f"{rate:.3g}"


class TaskProgress:
  """The progress of a long task that is not training, one line at a time:

    vlb 0/300 (0%) | compiling                        at once (so compiling is not silent)
    vlb 120/300 (40%) | 24.1 ex/s | ETA 0:07           on update(), at most every `every_s` seconds
    vlb 300/300 (100%) | 25.0 ex/s | took 0:12         when done reaches total (always)

  The rate is measured from the first update on (the first batch, which includes compiling, is left out once a
  second one is in), so the ETA is that of the steady state; `skip(n)` counts work found done (resumed chunks)
  without crediting it to the rate. `stage(text)` says what a task of a few unequal stages (a converter) starts
  now: 'convert 2/4 | converting 312 tensors | 0:03 elapsed', always printed. `log` takes each line
  (default: `print_progress`, stderr on the main process); `clock` is injectable for tests."""

  def __init__(self, total: int, what: str, unit: str = "", *, log: Optional[Callable[[str], None]] = None,
               every_s: float = 5.0, note: Optional[str] = None, clock: Callable[[], float] = time.monotonic,
               quiet_start: bool = False):
    self.total, self.what, self.unit, self.every_s = int(total), what, unit, every_s
    self.log = log or print_progress
    self._clock = clock
    self.done = 0
    self._t0 = self._last = clock()
    self._base = (self._t0, 0)          # (time, done) the rate is measured from
    self._updates = 0
    self._finished = False
    if not quiet_start:
      self._say([note] if note else [])

  def _head(self) -> str:
    pct = 100.0 * self.done / self.total if self.total else 100.0
    return f"{self.what} {min(self.done, self.total)}/{self.total} ({pct:.0f}%)"

  def _say(self, tail) -> None:
    self._last = self._clock()
    self.log(" | ".join([self._head(), *[t for t in tail if t]]))

  def rate(self, now: Optional[float] = None) -> float:
    """Units per second since the rate's start (0 before anything was measured)."""
    now = self._clock() if now is None else now
    t, d = self._base
    return (self.done - d) / (now - t) if now > t and self.done > d else 0.0

  def skip(self, n: int) -> None:
    """`n` units found already done: counted, not credited to the rate."""
    self.done += n
    self._base = (self._base[0], self._base[1] + n)

  def update(self, n: int = 1, note: Optional[str] = None) -> None:
    """`n` more units done; a line when `every_s` has passed since the last one, or at the end."""
    now = self._clock()
    self.done += n
    self._updates += 1
    rate = self.rate(now)
    if self._updates == 1 and self.done < self.total:
      self._base = (now, self.done)     # later rates leave the first (compiling) batch out
    if self.done >= self.total and not self._finished:
      self._finished = True
      self._say([f"{_rate_text(rate)} {self.unit}/s".strip() if rate else None, f"took {format_hms(now - self._t0)}",
                 note])
    elif now - self._last >= self.every_s:
      eta = f"ETA {format_hms((self.total - self.done) / rate)}" if rate else None
      self._say([f"{_rate_text(rate)} {self.unit}/s".strip() if rate else None, eta, note])

  def stage(self, text: str) -> None:
    """Stage `done + 1` of `total` starts: a line now, with the time elapsed since the task began."""
    self.done += 1
    self._last = self._clock()
    self.log(f"{self.what} {min(self.done, self.total)}/{self.total} | {text} | "
             f"{format_hms(self._last - self._t0)} elapsed")
