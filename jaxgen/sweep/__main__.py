r"""The sweep command line.

Run (or resume) a sweep:
  python -m jaxgen.sweep --config=experiments/ddpm_cifar.py:quick \
      --grid 'optim.learning_rate=1e-3,3e-4' --grid 'optim.ema_decay=0.99,0.999' --seeds=3 \
      --root=sweeps/ddpm_lr_ema --workers=2 [--set num_train_steps=500] [--dry-run] [--emit=slurm]
Report:
  python -m jaxgen.sweep report --root=sweeps/ddpm_lr_ema [--metric=samples/fid] [--x=optim.learning_rate]

One workdir per point under --root, named from its grid values and seed; rerunning the same command skips the
finished points and resumes the rest; Ctrl-C stops the points cleanly (each saves a checkpoint). docs/sweeps.md.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys


def _run_parser():
  p = argparse.ArgumentParser(prog="python -m jaxgen.sweep", description="Run or resume a sweep (or: report).",
                              epilog="python -m jaxgen.sweep report --help: the report command")
  p.add_argument("--config", required=True, help="experiment file and preset, e.g. experiments/ddpm_cifar.py:quick")
  p.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                 help="a swept config field and its values (repeatable; the points are every combination)")
  p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                 help="a config override shared by every point (repeatable; not part of the point names)")
  p.add_argument("--seeds", default="1", help="N (seeds 0..N-1) or a list 0,4,7; default 1")
  p.add_argument("--root", required=True, help="the sweep's directory: one workdir per point under it")
  p.add_argument("--workers", type=int, default=1, help="points run at once, each on its share of the CPU cores "
                 "(and GPUs); default 1")
  p.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                 help="list the points, their status and commands; run nothing")
  p.add_argument("--emit", choices=("slurm",), help="write ROOT/sweep.slurm (a job array, one task per point) "
                 "instead of running")
  p.add_argument("--slurm", action="append", default=[], metavar="OPTION",
                 help="an #SBATCH option for --emit=slurm, e.g. --slurm=--gres=gpu:1 --slurm=--time=4:00:00")
  p.add_argument("--point", help="run only this point (its index or name): what each SLURM array task runs")
  p.add_argument("--allow_config_change", action="store_true",
                 help="pass --allow_config_change to the points (resume a workdir under a changed config)")
  p.add_argument("--no_pin", dest="pin", action="store_false",
                 help="do not pin the workers to disjoint CPU cores")
  p.add_argument("--status_every", type=float, default=60.0, help="seconds between progress lines (0: none)")
  return p


def _report_parser():
  p = argparse.ArgumentParser(prog="python -m jaxgen.sweep report",
                              description="Collect a sweep's final metrics: CSV, markdown table, plots.")
  p.add_argument("--root", required=True)
  p.add_argument("--metric", action="append", default=[],
                 help="a metric to tabulate and plot (repeatable or comma-separated; the first picks the best row; "
                 "default: the metrics the runs' family and evaluations declare in jaxgen.registry, headline first, then "
                 "every other samples/* and test/* metric)")
  p.add_argument("--x", dest="x_field", help="the swept field to plot against (default: the first with >1 value)")
  p.add_argument("--mode", choices=("min", "max"), help="whether a lower or a higher first metric is better "
                 "(default: known from the name, e.g. fid: min, accuracy: max)")
  return p


def _sweep_args(args) -> list:
  """The sweep's defining flags, as a SLURM task must repeat them."""
  out = [f"--config={os.path.abspath(args.config.partition(':')[0])}" +
         (f":{args.config.partition(':')[2]}" if args.config.partition(":")[2] else "")]
  out += [f"--grid={g}" for g in args.grid] + [f"--set={s}" for s in args.set]
  out += [f"--seeds={args.seeds}", f"--root={os.path.abspath(args.root)}"]
  if args.allow_config_change:
    out.append("--allow_config_change")
  return out


def main(argv=None) -> int:
  from jaxgen.sweep import grid as grid_lib
  from jaxgen.sweep import report, runner, slurm
  argv = list(sys.argv[1:] if argv is None else argv)
  try:
    if argv[:1] == ["report"]:
      args = _report_parser().parse_args(argv[1:])
      metrics = [m.strip() for spec in args.metric for m in spec.split(",") if m.strip()]
      report.report(args.root, metrics, args.x_field, args.mode)
      return 0
    args = _run_parser().parse_args(argv)
    grid = grid_lib.parse_grid(args.grid)
    sets = [grid_lib.parse_assignment(s, "--set") for s in args.set]
    sweep = runner.Sweep(args.config, grid, sets, grid_lib.parse_seeds(args.seeds), args.root,
                         allow_config_change=args.allow_config_change)
    if args.point is not None:
      match = [p for p in sweep.points if str(p.index) == args.point or p.name == args.point]
      if not match:
        raise grid_lib.SweepError(f"--point={args.point!r}: no such point; indices 0..{len(sweep.points) - 1} "
                                  f"or names such as {sweep.points[0].name!r}")
      if not os.path.exists(os.path.join(sweep.root, runner.MANIFEST)):
        sweep.write_manifest()
      return runner.run(sweep, match, workers=1, pin=False, status_every=args.status_every)
    if args.workers < 1:
      raise grid_lib.SweepError(f"--workers={args.workers} must be >= 1")
    if args.dry_run:
      print(f"{len(sweep.points)} point(s) under {sweep.root}:")
      for p in sweep.points:
        status = runner.point_status(sweep.workdir(p))
        step = runner.latest_checkpoint(sweep.workdir(p))
        print(f"  [{p.index}] {p.name}: {status}" + (f" (checkpoint {step})" if step is not None else ""))
        print(f"      {shlex.join(sweep.command(p))}")
      return 0
    sweep.write_manifest()
    if args.emit == "slurm":
      path = os.path.join(sweep.root, "sweep.slurm")
      with open(path, "w") as f:
        f.write(slurm.script(sweep, _sweep_args(args), options=args.slurm))
      os.chmod(path, 0o755)
      print(f"wrote {path}: a job array of {len(sweep.points)} task(s); submit with: sbatch {shlex.quote(path)}")
      return 0
    from jaxgen.train.lock import WorkdirLock, WorkdirLocked
    lock = WorkdirLock(sweep.root)
    lock.path = os.path.join(sweep.root, ".sweep.lock")
    try:
      lock.acquire()
    except WorkdirLocked:
      h = lock.holder() or {}
      raise grid_lib.SweepError(f"another sweep runner (PID {h.get('pid')} on {h.get('host')}, started "
                                f"{h.get('start_time')}) is running on {sweep.root}; if it is gone, delete "
                                f"{lock.path}") from None
    try:
      return runner.run(sweep, sweep.points, workers=args.workers, pin=args.pin, status_every=args.status_every)
    finally:
      lock.release()
  except grid_lib.SweepError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    return 2


if __name__ == "__main__":
  sys.exit(main())
