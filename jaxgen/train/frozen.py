"""Frozen parts: sub-trees of a family's params restored from another run's workdir and never trained.

A family that builds on a finished run (latent diffusion on an autoencoder, unCLIP on CLIP, a DDPM on a VAE's
latents) declares `frozen_parts = {name: FrozenPart(workdir, expect=..., subtree=...)}`. The trainer
(jaxgen.train.trainer) and `load_run` then:
  - restore each part with `load_run(part.workdir, expect=part.expect)` (its EMA params, or its trained params
    with use='trained', or `subtree` of them),
    outside any compiled function, and hold it in `TrainState.frozen` (replicated on the mesh);
  - hand the family its params with the parts merged in at the top level (`merge`): `loss({**params,
    name: part}, ...)`, `sample(...)`; the gradient is taken with respect to the trained params only, so a
    frozen part is never in the optimizer state, never in the EMA, and bit-identical after any number of steps;
  - never write it into a checkpoint of the new run: the run's `frozen.json` records, per part, the source
    workdir, its step and a fingerprint (sha256 of every leaf's path, dtype, shape and bytes); on resume (and in
    `load_run`) the part is restored from the source again and a source whose fingerprint changed is refused
    with one line (FrozenPartChanged), before anything compiles.
Leaves labelled 'frozen' inside the trained params (Glow's fixed permutation) are a different, smaller thing:
they are saved with the run (jaxgen.train.optim).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

RECORD_FILE = "frozen.json"


class FrozenPartError(ValueError):
  """A frozen part cannot be restored as the config says (no such run, not the expected kind of run)."""


class FrozenPartChanged(FrozenPartError):
  """A frozen part's source run no longer holds the parameters this run was trained with."""


@dataclasses.dataclass(frozen=True)
class FrozenPart:
  workdir: str                                    # the source run's workdir
  expect: Tuple[Tuple[str, Any], ...] = ()        # ('dotted.field', value) pairs its config must hold
  subtree: Tuple[str, ...] = ()                   # keys into the source's EMA params; () = all of them
  step: Optional[int] = None                      # the source's checkpoint; None = its latest
  use: str = "ema"                                # 'ema': its EMA params; 'trained': its trained params (a run
                                                  # whose own evaluations read those, such as CLIP)


def merge(params, frozen):
  """The family's view of its params: the trained tree with the frozen parts added at the top level."""
  if not frozen:
    return params
  clash = sorted(set(params) & set(frozen))
  if clash:
    raise ValueError(f"frozen parts {clash} have the names of trained parameters")
  return {**params, **frozen}


def fingerprint(tree) -> str:
  import jax
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    a = np.asarray(leaf)
    h.update(f"{jax.tree_util.keystr(path)}|{a.dtype}|{a.shape}".encode())
    h.update(a.tobytes())
  return h.hexdigest()[:24]


def nbytes(tree) -> int:
  import jax
  return int(sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree)))


def load_parts(parts: Mapping[str, FrozenPart]) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]]]:
  """({name: params restored from the source run}, {name: record of its source}); host arrays."""
  import jax
  from jaxgen.train.run import load_run
  trees, records = {}, {}
  for name, part in parts.items():
    if not part.workdir or not os.path.isfile(os.path.join(part.workdir, "config.json")):
      raise FrozenPartError(f"the frozen part {name!r} comes from workdir={part.workdir!r}, which holds no "
                              "finished run (no config.json); train that run first or point the config at it")
    try:
      run = load_run(part.workdir, step=part.step, expect=dict(part.expect))
    except (ValueError, FileNotFoundError) as e:
      raise FrozenPartError(f"the frozen part {name!r} cannot be taken from {part.workdir}: {e}") from e
    if part.use not in ("ema", "trained"):
      raise FrozenPartError(f"the frozen part {name!r}: use={part.use!r}; choose 'ema' or 'trained'")
    tree = run.params if part.use == "ema" else run.state.params
    for key in part.subtree:
      tree = tree[key]
    tree = jax.tree.map(np.asarray, tree)
    trees[name] = tree
    records[name] = {"workdir": os.path.abspath(part.workdir), "step": int(run.step),
                     "fingerprint": fingerprint(tree), "bytes": nbytes(tree),
                     "subtree": list(part.subtree), "use": part.use}
  return trees, records


def read_records(workdir: str) -> Dict[str, Dict[str, Any]]:
  """The frozen parts a run was trained with ({name: record}, see load_parts); {} when it had none."""
  path = os.path.join(workdir, RECORD_FILE)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def check_records(workdir: str, records: Mapping[str, Mapping[str, Any]], *, has_checkpoint: bool) -> None:
  """FrozenPartChanged (one line) when this run's checkpoints were trained on frozen parts whose sources now
  hold other parameters (or that the family no longer declares)."""
  if not has_checkpoint or not os.path.exists(os.path.join(workdir, RECORD_FILE)):
    return
  old = read_records(workdir)
  if sorted(old) != sorted(records):
    raise FrozenPartChanged(f"the checkpoints in {workdir} were trained with frozen parts {sorted(old)}, but the "
                            f"config now gives {sorted(records)}; use a new --workdir")
  for name, rec in records.items():
    if old[name]["fingerprint"] != rec["fingerprint"]:
      raise FrozenPartChanged(
          f"the frozen part {name!r} from {rec['workdir']} (step {rec['step']}) is not the one the checkpoints in "
          f"{workdir} were trained with (fingerprint {rec['fingerprint']} != {old[name]['fingerprint']}, recorded "
          f"from {old[name]['workdir']} step {old[name]['step']}); restore that run, or use a new --workdir")


def write_records(workdir: str, records: Mapping[str, Mapping[str, Any]]) -> None:
  if not records:
    return
  os.makedirs(workdir, exist_ok=True)
  tmp = os.path.join(workdir, RECORD_FILE + ".tmp")
  with open(tmp, "w") as f:
    json.dump(dict(records), f, indent=2)
  os.replace(tmp, os.path.join(workdir, RECORD_FILE))
