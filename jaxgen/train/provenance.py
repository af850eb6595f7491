"""Provenance of a run, and the check that a resumed run keeps its config.

Every start of a training run records, in its workdir:
  config.json["provenance"]   the latest start: the exact command line, working directory, time, the git
                              commit of the code (and whether the tree was dirty), package versions and the
                              environment variables that change what JAX does (XLA_FLAGS, JAX_*, CUDA_VISIBLE_DEVICES),
                              the machine (CPU model, core count, device count and kind);
                              config.json["runtime"] has the devices and the XLA flags in effect;
  provenance.jsonl            one such record per start (a resumed run has several), with the step it started
                              from and any config change it was allowed to make;
  provenance/start_<k>.diff   `git diff HEAD` (and the untracked files' names) when the tree was dirty.

A rerun on a workdir that holds a checkpoint must use the run's config: `check_config_change` names the fields
that differ and refuses unless every one of them is safe to resume (SAFE_TO_RESUME, the trainer's: how long to
train, how often to log, checkpoint, sample and evaluate, where the data live; and the family's own,
jaxgen.registry.FAMILIES[family].safe_to_resume: how it samples) or the user passes --allow_config_change.
"""
from __future__ import annotations

import datetime
import fnmatch
import json
import os
import shlex
import subprocess
import sys
from typing import Any, Dict, Iterable, List, Optional, Tuple

# Fields of the trainer's a resumed run may change: they decide how long it trains, how often it reports,
# checkpoints, samples and evaluates and where the data are read from, not what the parameters are trained on.
# A family adds its own (how its samples are drawn) in its registry entry's safe_to_resume.
SAFE_TO_RESUME = (
    "num_train_steps", "log_every", "checkpoint_every", "keep_checkpoints", "sample_every", "num_samples",
    "eval_every", "evals", "eval.*", "baseline.*", "tensorboard", "xla_cpu_fast_conv",
    "parallel.*",                       # how the state lies on the devices: a checkpoint restores into any layout
    "data.data_dir", "data.download",
    "data.workers",                     # how many processes decode the streaming batches: the batches are the same
)

PACKAGES = ("jaxgen", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "tensorflow-datasets",
            "tensorflow-cpu", "tensorflow", "numpy", "ml_collections", "absl-py", "scipy", "scikit-learn",
            "matplotlib", "pillow", "grain", "safetensors", "tokenizers")
ENV_VARS = ("XLA_FLAGS", "JAX_PLATFORMS", "JAX_ENABLE_X64", "JAX_DEFAULT_PRNG_IMPL", "JAX_COMPILATION_CACHE_DIR",
            "CUDA_VISIBLE_DEVICES", "TPU_VISIBLE_CHIPS", "XLA_PYTHON_CLIENT_MEM_FRACTION", "OMP_NUM_THREADS",
            "SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "JAXGEN_SWEEP_POINT")


def safe_to_resume(family: Optional[str], diverged: bool = False) -> Tuple[str, ...]:
  """The field patterns a resumed run of `family` may change: the trainer's, the family's declared ones (an
  unknown family: the trainer's only) and, after a divergence, the remedies its message advises."""
  from jaxgen import registry
  entry = registry.FAMILIES.get(family) if isinstance(family, str) else None
  return SAFE_TO_RESUME + (entry.safe_to_resume if entry else ()) + (SAFE_AFTER_DIVERGENCE if diverged else ())


# Fields a rerun may also change after a divergence (the trainer wrote workdir/diverged.json): the remedy its
# message advises.
SAFE_AFTER_DIVERGENCE = ("optim.learning_rate", "optim.groups.*.learning_rate", "optim.warmup_steps",
                         "optim.grad_clip", "optim.groups.*.grad_clip")


def is_safe_to_resume(field: str, family: Optional[str] = None, diverged: bool = False) -> bool:
  return any(fnmatch.fnmatchcase(field, pattern) for pattern in safe_to_resume(family, diverged))


# -- what is recorded -------------------------------------------------------------------------------------------

def _git(cwd: str, *args: str) -> Optional[str]:
  try:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
  except (OSError, subprocess.TimeoutExpired):
    return None
  return out.stdout if out.returncode == 0 else None


def git_state(path: str) -> Tuple[Dict[str, Any], str]:
  """({'repo', 'commit', 'dirty', 'untracked'} or {'repo': None, 'note'}, the diff text when dirty)."""
  directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
  top = _git(directory, "rev-parse", "--show-toplevel")
  if top is None:
    return {"repo": None, "note": f"{directory} is not in a git checkout (or git is not installed)"}, ""
  top = top.strip()
  commit = (_git(top, "rev-parse", "HEAD") or "").strip() or None     # None: a repository without commits
  status = _git(top, "status", "--porcelain", "--untracked-files=all") or ""
  changed = [l for l in status.splitlines() if l and not l.startswith("??")]
  untracked = [l[3:] for l in status.splitlines() if l.startswith("??")]
  diff = (_git(top, "diff", "HEAD") or "") if commit else ""
  if untracked:
    diff += "".join(f"# untracked: {name}\n" for name in untracked)
  info = {"repo": top, "commit": commit, "dirty": bool(changed or untracked), "changed_files": len(changed),
          "untracked": untracked[:50]}
  return info, diff if info["dirty"] else ""


def package_versions(names: Iterable[str] = PACKAGES) -> Dict[str, str]:
  """Installed versions (importlib.metadata: nothing is imported); packages that are not installed are left out."""
  from importlib import metadata
  out = {}
  for name in names:
    try:
      out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      pass
  return out


def cpu_model() -> str:
  """The CPU's model name (/proc/cpuinfo on Linux, else platform.processor())."""
  import platform
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.lower().startswith(("model name", "hardware", "cpu model")):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def machine_info() -> Dict[str, Any]:
  """What bitwise reproducibility depends on besides the code (docs/sweeps.md): CPU model, cores, devices."""
  info: Dict[str, Any] = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count()}
  if hasattr(os, "sched_getaffinity"):
    info["cpus_usable"] = len(os.sched_getaffinity(0))
  jax = sys.modules.get("jax")
  if jax is not None:                 # devices only when JAX runs already (collect never starts it)
    try:
      devices = jax.devices()
      info.update(device_count=jax.device_count(), local_device_count=jax.local_device_count(),
                  device_kind=devices[0].device_kind if devices else None, backend=jax.default_backend())
    except RuntimeError:
      pass
  return info


def collect(argv: Optional[List[str]] = None, experiment_file: Optional[str] = None) -> Tuple[Dict[str, Any], str]:
  """(the provenance record of this process, the git diff text to save when the tree is dirty)."""
  import jaxgen
  argv = list(sys.argv if argv is None else argv)
  main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
  shown = ([sys.executable, "-m", main_spec.name] if main_spec is not None and main_spec.name != "__main__"
           else [sys.executable, argv[0] if argv else ""]) + argv[1:]
  code, diff = git_state(os.path.dirname(os.path.abspath(jaxgen.__file__)))
  record = {
      "time": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
      "command": shlex.join(shown),
      "argv": argv, "cwd": os.getcwd(), "git": code, "packages": package_versions(),
      "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
      "machine": machine_info(),
  }
  if experiment_file:
    exp, exp_diff = git_state(experiment_file)
    if exp.get("repo") and exp["repo"] != code.get("repo"):
      record["experiment_git"] = exp
      diff += exp_diff
  return record, diff


def record_start(workdir: str, record: Dict[str, Any], diff: str, *, start_step: int,
                 config_changes: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
  """Append this start to workdir/provenance.jsonl (saving the diff under workdir/provenance/); returns the
  record with 'start', 'start_step' (and 'diff_file', 'config_changes') filled in."""
  path = os.path.join(workdir, "provenance.jsonl")
  os.makedirs(workdir, exist_ok=True)
  start = 0
  if os.path.exists(path):
    with open(path) as f:
      start = sum(1 for line in f if line.strip())
  record = dict(record, start=start, start_step=int(start_step))
  if config_changes:
    record["config_changes"] = config_changes
  if diff:
    os.makedirs(os.path.join(workdir, "provenance"), exist_ok=True)
    name = os.path.join("provenance", f"start_{start}.diff")
    with open(os.path.join(workdir, name), "w") as f:
      f.write(diff)
    record["diff_file"] = name
  with open(path, "a") as f:
    f.write(json.dumps(record, default=str) + "\n")
  return record


# -- the config-change check ------------------------------------------------------------------------------------

def _normal(value):
  """JSON's view of a value (tuples and lists alike), so a config read back from config.json compares equal."""
  return json.loads(json.dumps(value, default=str))


def flatten(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict) and value:
      out.update(flatten(value, name + "."))
    else:
      out[name] = _normal(value)
  return out


def config_diff(old: Dict[str, Any], new: Dict[str, Any]) -> Dict[str, Tuple[Any, Any]]:
  """{field: (old value, new value)} of the fields that differ; a field only in `new` (a later jaxgen's
  addition, at a default that reproduces the old behaviour) is not a difference; one only in `old` is
  (new value '<absent>')."""
  a, b = flatten(old), flatten(new)
  out = {k: (a[k], b.get(k, "<absent>")) for k in a if a[k] != b.get(k, "<absent>")}
  return dict(sorted(out.items()))


def has_checkpoint(workdir: str) -> bool:
  directory = os.path.join(workdir, "checkpoints")
  return os.path.isdir(directory) and any(n.isdigit() for n in os.listdir(directory))


class BadRecord(ValueError):
  """A workdir's config.json that is not a readable run record."""


def read_record(workdir: str) -> Optional[Dict[str, Any]]:
  """The workdir's config.json as a dict, None when there is none; BadRecord (one line naming the file and
  the fault) when it is not valid JSON or not a run record."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise BadRecord(f"{path} cannot be read as a run record ({type(e).__name__}: {str(e).splitlines()[0]}); "
                    f"restore it from a copy (provenance.jsonl holds each start's command) or remove it") from e
  if not isinstance(record, dict) or not isinstance(record.get("config", {}), dict):
    raise BadRecord(f"{path} is not a run record (a JSON object with a 'config' object); restore it from a copy "
                    f"or remove it")
  return record


class ConfigChanged(ValueError):
  """A rerun on a workdir asked for a config that changes what its checkpoint means."""


def _show(value) -> str:
  text = json.dumps(value) if not isinstance(value, str) else repr(value)
  return text if len(text) <= 60 else text[:57] + "..."


def check_config_change(workdir: str, new_config: Dict[str, Any], *, allow: bool = False) -> Dict[str, Any]:
  """Compare `new_config` with the config of the run in `workdir` (when it has a checkpoint).

  Returns {field: [old, new]} of the changes made (empty when none or when there is nothing to resume);
  raises ConfigChanged naming the fields unless each is safe to resume for the run's family or `allow`.
  """
  path = os.path.join(workdir, "config.json")
  if not (os.path.exists(path) and has_checkpoint(workdir)):
    return {}
  record = read_record(workdir)
  if "config" not in record:
    return {}
  changes = config_diff(record["config"], new_config)
  family = record["config"].get("family")
  diverged = os.path.exists(os.path.join(workdir, "diverged.json"))
  unsafe = {k: v for k, v in changes.items() if not is_safe_to_resume(k, family, diverged)}
  listed = lambda d: ", ".join(f"{k} {_show(o)} -> {_show(n)}" for k, (o, n) in d.items())
  if unsafe and not allow:
    raise ConfigChanged(
        f"the run in {workdir} was trained with a different config: {listed(unsafe)}. Resuming would continue "
        f"its checkpoint under settings it was not trained with. Rerun with the run's own values, use another "
        f"--workdir, or pass --allow_config_change if the change is intended (docs/sweeps.md lists the fields "
        f"that are safe to change on resume)")
  if changes:
    kind = "changed config (allowed by --allow_config_change)" if unsafe else (
        "changed config (safe to resume after a divergence)" if diverged else "changed config (safe to resume)")
    print(f"note: resuming {workdir} with {kind}: {listed(changes)}", flush=True)
  return {k: list(v) for k, v in changes.items()}
