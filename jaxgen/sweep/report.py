"""`python -m jaxgen.sweep report --root=ROOT`: the final metrics of every point of a sweep in one table.

Writes under ROOT:
  report.csv          one row per point: its swept values, seed, status, step, git commit, every final metric
  report_summary.csv  one row per grid point: mean and std over its finished seeds of each metric (<m>_seeds_mean, <m>_seeds_std)
  report.md           the summary table (mean ± std, the best row marked, unfinished points said) and the points
  metrics_vs_<field>.png  the chosen metrics against a swept field, error bars = std over seeds, one line per
                      combination of the other swept fields
  loss_curves.png     the training loss of every point, one colour per grid point
A point's final metrics are the last logged value of each metric in its metrics.jsonl. Without --metric the
table shows the metrics the run's family and evaluations declare (jaxgen.registry: the first one logged is the
one the best row is chosen by), then any other held-out or sample metric logged. No JAX is imported. Progress
lines (points read, plots drawn) go to stderr (jaxgen.train.logging.TaskProgress); the report itself to stdout.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from jaxgen import registry
from jaxgen.sweep.grid import SweepError, parse_value
from jaxgen.sweep.runner import FINISHED, MANIFEST, latest_checkpoint, point_status, progress_of
from jaxgen.train.logging import TaskProgress, print_progress  # numpy only

# Whether a metric is better low or high, by its name's last part (the rest: --mode).
LOWER_IS_BETTER = ("fid", "kid", "loss", "bits_per_dim", "nll", "error", "reconstruction_error", "rmse")
HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "inception_score", "modes_covered", "high_quality_fraction",
                    "classes_covered", "label_accuracy", "elbo", "log_likelihood")


def metric_mode(metric: str, mode: Optional[str] = None) -> str:
  if mode:
    if mode not in ("min", "max"):
      raise SweepError(f"--mode={mode!r}; choose min or max")
    return mode
  last = metric.rsplit("/", 1)[-1]
  if any(last == n or last.endswith("_" + n) for n in LOWER_IS_BETTER):
    return "min"
  if any(last == n or last.endswith("_" + n) for n in HIGHER_IS_BETTER):
    return "max"
  raise SweepError(f"is a lower or a higher {metric} better? say it with --mode=min or --mode=max")


def declared_metrics(rows) -> Tuple[str, ...]:
  """The metric patterns the sweep's runs declare (jaxgen.registry.declared_metrics of the family and evaluations
  in the first point's config.json that has one); () when no point has written its config yet."""
  for r in rows:
    try:
      with open(os.path.join(r["workdir"], "config.json")) as f:
        config = json.load(f).get("config", {})
    except (FileNotFoundError, json.JSONDecodeError):
      continue
    return registry.declared_metrics(config.get("family"), config.get("evals") or ())
  return ()


def default_metrics(rows, present: Sequence[str]) -> List[str]:
  """The table's metrics when none are asked for: the evaluations' declared metrics that were logged (the
  headline first), then any other 'samples/' or 'test/' metric logged ('*_std' left out); when no evaluation
  logged any, the family's declared headline training metric (else any training loss, else the first metric)."""
  declared = [m for m in registry.match_metrics(declared_metrics(rows), present) if not m.endswith("_std")]
  evaluated = lambda m: m.startswith(("samples/", "test/")) and not m.endswith("_std")   # noqa: E731
  held = [m for m in dict.fromkeys(declared + list(present)) if evaluated(m)]
  if held:
    return held
  losses = [m for m in present if m.startswith("train/") and m.endswith("loss")]
  return declared[:1] or losses[:1] or list(present[:1])


def _metrics(path: str):
  """(final value of every metric, {'train/*loss' key: [(step, value)]}) of a metrics.jsonl."""
  final, curve = {}, {}
  if not os.path.exists(path):
    return final, curve
  with open(path) as f:
    for line in f:
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue                          # a line being written
      for k, v in row.items():
        if k != "step" and isinstance(v, (int, float)):
          final[k] = float(v)
      for k, v in row.items():
        if k.startswith("train/") and k.endswith("loss") and isinstance(v, (int, float)):
          curve.setdefault(k, []).append((int(row["step"]), float(v)))
  return final, curve


def collect(root: str, log=None):
  """(the sweep's manifest, one dict per point); progress lines to `log` (default: stderr)."""
  manifest_path = os.path.join(root, MANIFEST)
  if not os.path.exists(manifest_path):
    raise SweepError(f"--root={root}: no sweep here ({manifest_path} does not exist; run the sweep first)")
  with open(manifest_path) as f:
    manifest = json.load(f)
  rows = []
  bar = TaskProgress(len(manifest["points"]), "report: reading points", "points", log=log)
  for p in manifest["points"]:
    workdir = p["workdir"]
    final, curve = _metrics(os.path.join(workdir, "metrics.jsonl"))
    commit = None
    try:
      with open(os.path.join(workdir, "config.json")) as f:
        git = json.load(f).get("provenance", {}).get("git", {})
      commit = (git.get("commit") or "")[:10] + ("+dirty" if git.get("dirty") else "") if git.get("commit") else None
    except (FileNotFoundError, json.JSONDecodeError):
      pass
    status = point_status(workdir)
    rows.append({"name": p["name"], "group": p["group"], "seed": p["seed"], "workdir": workdir,
                 "values": {f: parse_value(v) for f, v in p["values"]}, "texts": dict(p["values"]),
                 "status": status,
                 "step": latest_checkpoint(workdir), "total": manifest.get("num_train_steps", {}).get(p["name"]),
                 "progress": progress_of(os.path.join(workdir, "sweep.log")) if status != FINISHED else None,
                 "commit": commit, "metrics": final, "curve": curve})
    bar.update(1)
  return manifest, rows


def _mean_std(values: Sequence[float]):
  n = len(values)
  if n == 0:
    return None, None
  mean = sum(values) / n
  std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
  return mean, std


def summarize(manifest, rows, metrics: Sequence[str]) -> List[Dict]:
  """One dict per grid point (in grid order): its values, seeds done of all, and (mean, std, n) per metric."""
  groups: Dict[str, Dict] = {}
  for r in rows:
    g = groups.setdefault(r["group"], {"group": r["group"], "values": r["values"], "texts": r["texts"],
                                       "points": []})
    g["points"].append(r)
  out = []
  for g in groups.values():
    done = [r for r in g["points"] if r["status"] == FINISHED]
    g["done"], g["total"] = len(done), len(g["points"])
    g["stats"] = {m: (*_mean_std([r["metrics"][m] for r in done if m in r["metrics"]]),
                      sum(m in r["metrics"] for r in done)) for m in metrics}
    unfinished = [r for r in g["points"] if r["status"] != FINISHED]
    g["status"] = "done" if not unfinished else "; ".join(
        f"seed {r['seed']} {r['status']}" + (f" ({r['progress']})" if r.get("progress") else
                                             (f" (checkpoint {r['step']})" if r["step"] else ""))
        for r in unfinished)
    out.append(g)
  return out


def _fmt(x: Optional[float], std: Optional[float] = None, n: int = 0) -> str:
  if x is None:
    return "–"
  text = f"{x:.4g}"
  if std is not None and n > 1:
    text += f" ± {std:.2g}"
  return text


def _best(groups, metric: str, mode: str) -> Optional[str]:
  scored = [(g["stats"][metric][0], g["group"]) for g in groups if g["stats"][metric][0] is not None and g["done"]]
  if not scored:
    return None
  return (min(scored) if mode == "min" else max(scored))[1]


def markdown(manifest, rows, groups, metrics: Sequence[str], mode: str) -> str:
  fields = [f for f, _ in manifest["grid"]]
  best = _best(groups, metrics[0], mode) if metrics else None
  lines = [f"Sweep `{manifest['config']}`" + (f" with {', '.join('='.join(s) for s in manifest['set'])}"
                                               if manifest["set"] else "") +
           f"; {len(manifest['seeds'])} seed(s) per grid point; mean ± std over the finished seeds; "
           f"best {metrics[0]} ({mode}) marked." if metrics else "", ""]
  head = ["", *fields, "seeds done", *metrics, "status"]
  lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---"]) + "|"]
  for g in groups:
    cells = ["**best**" if g["group"] == best else ""]
    cells += [g["texts"].get(f, "") for f in fields]
    cells.append(f"{g['done']}/{g['total']}")
    cells += [_fmt(*g["stats"][m]) for m in metrics]
    cells.append(g["status"])
    lines.append("| " + " | ".join(cells) + " |")
  lines += ["", "| point | status | step | commit | " + " | ".join(metrics) + " |",
            "|---|---|---:|---|" + "---:|" * len(metrics)]
  for r in rows:
    step = f"{r['step'] or 0}/{r['total']}" if r["total"] else str(r["step"] or 0)
    lines.append(f"| {r['name']} | {r['status']} | {step} | {r['commit'] or '–'} | " +
                 " | ".join(_fmt(r["metrics"].get(m)) for m in metrics) + " |")
  return "\n".join(lines) + "\n"


def write_csv(path: str, manifest, rows, groups, metrics: Sequence[str]) -> None:
  fields = [f for f, _ in manifest["grid"]]
  all_metrics = sorted({k for r in rows for k in r["metrics"]})
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["point", *fields, "seed", "status", "step", "num_train_steps", "commit", *all_metrics])
    for r in rows:
      w.writerow([r["name"], *[r["values"].get(k, "") for k in fields], r["seed"], r["status"], r["step"] or 0,
                  r["total"], r["commit"] or "", *[r["metrics"].get(m, "") for m in all_metrics]])
  with open(path.replace(".csv", "_summary.csv"), "w", newline="") as f:
    w = csv.writer(f)
    # over seeds: "<metric>_seeds_mean/_seeds_std", never "<metric>_std", which may be a logged metric of its own
    # (samples/kid_std: KID's spread over subsets, a column of report.csv)
    w.writerow([*fields, "seeds_done", "seeds", *[f"{m}_seeds_{s}" for m in metrics for s in ("mean", "std")],
                "status"])
    for g in groups:
      stats = [v for m in metrics for v in g["stats"][m][:2]]
      w.writerow([*[g["values"].get(k, "") for k in fields], g["done"], g["total"],
                  *["" if v is None else v for v in stats], g["status"]])


def _log_y(ax) -> None:
  """Log scale with plain tick labels (0.05, 0.1, not 5x10^-2)."""
  from matplotlib.ticker import FormatStrFormatter
  ax.set_yscale("log")
  ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
  ax.yaxis.set_minor_formatter(FormatStrFormatter("%.3g"))


def _slug(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def plot_metrics(path: str, manifest, groups, metrics: Sequence[str], x_field: str) -> Optional[str]:
  """Each metric against `x_field`, one line per combination of the other swept fields, error bars = std."""
  fields = [f for f, _ in manifest["grid"]]
  others = [f for f in fields if f != x_field]
  xs = [parse_value(v) for f, vals in manifest["grid"] if f == x_field for v in vals]
  numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
  from jaxgen.train.images import pyplot
  plt = pyplot()
  ncols = min(4, len(metrics))
  nrows = -(-len(metrics) // ncols)
  fig, grid_axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), dpi=100, squeeze=False)
  for ax in grid_axes.flat[len(metrics):]:
    ax.set_visible(False)
  axes = [list(grid_axes.flat)]         # every metric asked for, four to a row
  lines = {}
  for g in groups:
    key = tuple(g["values"].get(f) for f in others)
    lines.setdefault(key, []).append(g)
  drawn = False
  for ax, metric in zip(axes[0], metrics):
    for key, gs in lines.items():
      pts = sorted(((g["values"][x_field] if numeric else xs.index(g["values"][x_field])), *g["stats"][metric][:2])
                   for g in gs if g["stats"][metric][0] is not None)
      if not pts:
        continue
      label = ", ".join(f"{f.rsplit('.', 1)[-1]}={v}" for f, v in zip(others, key)) or None
      ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3,
                  lw=1.2, label=label)
      drawn = True
    if numeric and xs and min(xs) > 0 and max(xs) / min(xs) >= 3:
      ax.set_xscale("log")
    if not numeric:
      ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_xlabel(x_field)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if others and ax is axes[0][0]:
      ax.legend(fontsize=7)
  fig.suptitle(f"mean ± std over seeds ({os.path.basename(manifest['config'])})", fontsize=9)
  fig.tight_layout()
  if drawn:
    fig.savefig(path)
  plt.close(fig)
  return path if drawn else None


def plot_loss_curves(path: str, rows) -> Optional[str]:
  """One panel per training loss ('train/loss', or a GAN's 'train/g_loss' and 'train/d_loss'), one line per
  point, one colour per grid point."""
  rows = [r for r in rows if r["curve"]]
  keys = sorted({k for r in rows for k in r["curve"]}, key=lambda k: (k != "train/loss", k))
  if not keys:
    return None
  from jaxgen.train.images import pyplot
  plt = pyplot()
  fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys), 4), dpi=100, squeeze=False)
  groups = list(dict.fromkeys(r["group"] for r in rows))
  cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
  for ax, key in zip(axes[0], keys):
    labelled = set()
    for r in rows:
      if key not in r["curve"]:
        continue
      steps, values = zip(*r["curve"][key])
      label = r["group"] if r["group"] not in labelled else None
      labelled.add(r["group"])
      ax.plot(steps, values, color=cmap(groups.index(r["group"]) % cmap.N), lw=0.9, alpha=0.8, label=label)
    if min(v for r in rows for _, v in r["curve"].get(key, [])) > 0:
      _log_y(ax)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    if ax is axes[0][0]:
      ax.legend(fontsize=7)
  fig.suptitle("training loss of every point (one colour per grid point, one line per seed)", fontsize=9)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path


def report(root: str, metrics: Sequence[str] = (), x_field: Optional[str] = None, mode: Optional[str] = None,
           out=None, log=None) -> Dict[str, str]:
  """Write the report files under `root` (see the module docstring); returns {what: path}. The report goes to
  `out` (default stdout), progress lines to `log` (default stderr)."""
  import sys
  out = out or sys.stdout
  log = log or print_progress
  root = os.path.abspath(root)
  manifest, rows = collect(root, log)
  present = sorted({k for r in rows for k in r["metrics"]})
  if metrics:
    missing = [m for m in metrics if m not in present]
    if missing and present:
      raise SweepError(f"--metric={missing[0]}: no point logged it; the points logged: {', '.join(present)}")
  else:
    metrics = default_metrics(rows, present)
  metrics = list(metrics)
  primary_mode = metric_mode(metrics[0], mode) if metrics else "min"
  fields = [f for f, _ in manifest["grid"]]
  if x_field is not None and x_field not in fields:
    raise SweepError(f"--x={x_field!r} is not a swept field; the sweep's fields: {', '.join(fields) or '(none)'}")
  groups = summarize(manifest, rows, metrics)
  paths = {}
  text = markdown(manifest, rows, groups, metrics, primary_mode)
  paths["markdown"] = os.path.join(root, "report.md")
  with open(paths["markdown"], "w") as f:
    f.write(text)
  paths["csv"] = os.path.join(root, "report.csv")
  write_csv(paths["csv"], manifest, rows, groups, metrics)
  paths["summary_csv"] = paths["csv"].replace(".csv", "_summary.csv")
  x_field = x_field or next((f for f, vals in manifest["grid"] if len(vals) > 1), None)
  if x_field and metrics:
    log(f"report: plotting {len(metrics)} metric(s) against {x_field}")
    plotted = plot_metrics(os.path.join(root, f"metrics_vs_{_slug(x_field)}.png"), manifest, groups,
                           [m for m in metrics if m != "train/loss"] or metrics[:1], x_field)
    if plotted:
      paths["metrics_plot"] = plotted
  log(f"report: plotting the loss curves of {sum(bool(r['curve']) for r in rows)} point(s)")
  curves = plot_loss_curves(os.path.join(root, "loss_curves.png"), rows)
  if curves:
    paths["loss_curves"] = curves
  print(text, file=out)
  print("wrote " + ", ".join(paths.values()), file=out, flush=True)
  return paths
