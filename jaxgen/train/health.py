"""What a "last good" checkpoint is, after a divergence.

A checkpoint is saved only after every step before it had finite metrics, but a diverging run can write finite
checkpoints whose parameters are already ruined (a learning rate of 1e3: the loss jumps from 1 to 1e7 one step
before it turns into NaN). A checkpoint of step c is *good* when
  - its parameters' global norm is at most NORM_GROWTH times the norm of the run's first state (recorded at the
    run's first start: init or converted weights), and
  - no step up to c + 1 had a loss spike: a loss above the mean of the previous (up to WINDOW) losses by more
    than SPIKE times max(|mean|, their standard deviation). The loss of step c + 1 is the first one computed
    from checkpoint c's parameters, so a spike at step s rules out every checkpoint from s - 1 on.
`Health` keeps the losses of the run (this start's steps, and the logged window means of earlier starts read
from metrics.jsonl) and each checkpoint's parameter norm in workdir/health.json.
"""
from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Optional, Tuple

NORM_GROWTH = 100.0
SPIKE = 10.0
WINDOW = 20
HEALTH_FILE = "health.json"


def first_spike(losses: List[Tuple[int, float]]) -> Optional[Tuple[int, float, float]]:
  """(step, loss, mean of the losses before it) of the first step whose finite loss spikes, or None."""
  seen: List[float] = []
  for step, loss in losses:
    if not math.isfinite(loss):          # the non-finite step itself: the trainer stops there anyway
      continue
    recent = seen[-WINDOW:]
    if recent:
      mean = sum(recent) / len(recent)
      std = math.sqrt(sum((x - mean) ** 2 for x in recent) / len(recent))
      if loss - mean > SPIKE * max(abs(mean), std, 1e-12):
        return step, loss, mean
    seen.append(loss)
  return None


class Health:
  """The run's losses and its checkpoints' parameter norms (`path`: workdir/health.json, written by process 0)."""

  def __init__(self, path: str, *, enabled: bool = True):
    self.path = path
    self.enabled = enabled
    self.losses: List[Tuple[int, float]] = []
    self.record: Dict[str, float] = {}
    if os.path.exists(self.path):
      try:
        with open(self.path) as f:
          self.record = {k: float(v) for k, v in json.load(f).items()}
      except (OSError, ValueError):
        self.record = {}

  def seed_losses(self, metrics_path: str, upto: int) -> None:
    """The logged train/loss of earlier starts (window means), for the spike test's first steps."""
    if not os.path.exists(metrics_path):
      return
    with open(metrics_path) as f:
      for line in f:
        try:
          row = json.loads(line)
        except ValueError:
          continue
        if "train/loss" in row and row.get("step", 0) <= upto:
          self.losses.append((int(row["step"]), float(row["train/loss"])))

  def add_losses(self, rows) -> None:
    """rows: (step, host metrics) of the steps just checked."""
    for step, m in rows:
      if "loss" in m:
        self.losses.append((int(step), float(m["loss"])))

  @property
  def reference(self) -> Optional[float]:
    return self.record.get("reference")

  def note(self, step: Optional[int], norm: float) -> None:
    """Record checkpoint `step`'s parameter norm (step None: the reference, kept once set)."""
    key = "reference" if step is None else str(step)
    if step is None and key in self.record:
      return
    self.record[key] = float(norm)
    if self.enabled and step is not None:         # written with the first checkpoint, not before
      os.makedirs(os.path.dirname(self.path), exist_ok=True)
      tmp = self.path + ".tmp"
      with open(tmp, "w") as f:
        json.dump(self.record, f)
      os.replace(tmp, self.path)

  def last_good(self, steps) -> Tuple[Optional[int], str]:
    """(the newest good checkpoint among `steps` or None, a one-sentence reason for the ones ruled out)."""
    spike = first_spike(self.losses)
    ref = self.reference
    why = []
    if spike is not None:
      why.append(f"the loss first rose far above its recent average at step {spike[0]} ({spike[1]:.4g} against "
                 f"{spike[2]:.4g})")
    good = None
    for step in sorted(steps, reverse=True):
      norm = self.record.get(str(step))
      if spike is not None and step >= spike[0] - 1:
        continue
      if ref is not None and norm is not None and not norm <= NORM_GROWTH * ref:
        why.append(f"checkpoint {step}'s parameter norm is {norm:.4g} against {ref:.4g} at the start")
        continue
      good = step
      break
    return good, "; ".join(why)
