"""`--emit=slurm`: a SLURM job-array script for a sweep, one array task per point.

Each task runs `python -m jaxgen.sweep <the same sweep flags> --point=$SLURM_ARRAY_TASK_ID`, so it uses the same
workdirs and the same resume as the local runner: a finished point exits at once, an unfinished one resumes
from its checkpoint. `--signal=B:TERM@120` asks SLURM to send SIGTERM to the batch shell two minutes before the
time limit: without `B:` sbatch signals only job steps (srun), and this script starts none; the shell `exec`s
the sweep process, so the signal reaches it, and it passes it to the point (which saves a checkpoint and exits).
`--requeue` lets a preempted task run again; its new attempt, perhaps on another node, takes over the workdir
lock of its own killed attempt by the SLURM array task id (jaxgen.train.lock).
"""
from __future__ import annotations

import os
import shlex
import sys
from typing import List, Sequence


def script(sweep, sweep_args: Sequence[str], *, options: Sequence[str] = (), job_name: str = "") -> str:
  """The text of the job-array script. sweep_args: the sweep's own flags (config, grid, set, seeds, root)."""
  n = len(sweep.points)
  name = job_name or os.path.basename(sweep.root.rstrip("/")) or "jaxgen-sweep"
  lines: List[str] = [
      "#!/bin/bash",
      f"# {n} point(s) of the jaxgen sweep in {sweep.root} (written by python -m jaxgen.sweep --emit=slurm).",
      "# Submit: sbatch " + shlex.quote(os.path.join(sweep.root, "sweep.slurm")),
      "# Resubmitting after a failure or a time limit runs only what is unfinished (finished points exit at once).",
      f"#SBATCH --job-name={name}",
      f"#SBATCH --array=0-{n - 1}",
      f"#SBATCH --output={os.path.join(sweep.root, 'slurm-%A_%a.out')}",
      "#SBATCH --requeue",
      "#SBATCH --signal=B:TERM@120",
      "#SBATCH --ntasks=1",
  ]
  lines += [f"#SBATCH {opt}" if opt.startswith("--") else f"#SBATCH --{opt}" for opt in options]
  lines += [
      "set -euo pipefail",
      f"cd {shlex.quote(sweep.cwd)}",
      # exec: the batch shell becomes the sweep process, so --signal=B:'s SIGTERM reaches it; it passes it on.
      "exec " + shlex.join([sys.executable, "-m", "jaxgen.sweep", *sweep_args]) + " --point=${SLURM_ARRAY_TASK_ID}",
      "",
  ]
  return "\n".join(lines)
