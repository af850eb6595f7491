"""The sweep's grid, names, resources, SLURM script and report, without running a point."""
import csv
import json
import math
import os

import numpy as np
import pytest

from jaxgen.sweep import grid, report, runner, slurm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GAN = os.path.join(ROOT, "experiments", "gan_toy2d.py")


def test_grid_values_seeds_and_stable_names():
  assert grid.split_values("1e-3, 3e-4") == ["1e-3", "3e-4"]
  assert grid.split_values("(1,2),(1,2,2)") == ["(1,2)", "(1,2,2)"]
  assert grid.split_values("'a,b',c") == ["'a,b'", "c"]
  assert grid.parse_seeds("3") == [0, 1, 2] and grid.parse_seeds("0,4,7") == [0, 4, 7]
  g = grid.parse_grid(["optim.learning_rate=1e-3,3e-4", "config.model.ch_mult=(1,2),(1,2,2)"])
  assert g == [("optim.learning_rate", ["1e-3", "3e-4"]), ("model.ch_mult", ["(1,2)", "(1,2,2)"])]
  points = grid.expand(g, [0, 1])
  assert [p.name for p in points[:3]] == ["learning_rate=1e-3,ch_mult=_1_2_,seed=0",
                                          "learning_rate=1e-3,ch_mult=_1_2_,seed=1",
                                          "learning_rate=1e-3,ch_mult=_1_2_2_,seed=0"]
  assert len(points) == 8 and [p.index for p in points] == list(range(8))
  assert points[0].group == points[1].group == "learning_rate=1e-3,ch_mult=_1_2_"
  assert [p.name for p in grid.expand(g, [0, 1])] == [p.name for p in points]     # the same on a rerun
  # Two fields with the same last part keep their full names.
  both = grid.expand([("optim.groups.g.learning_rate", ["1"]), ("optim.learning_rate", ["2"])], [0])
  assert both[0].name == "optim.groups.g.learning_rate=1,optim.learning_rate=2,seed=0"
  assert grid.expand([], [0, 1])[1].name == "seed=1"


@pytest.mark.parametrize("args, message", [
    (["--grid", "optim.learning_rate"], "expected FIELD=VALUE"),
    (["--grid", "seed=1,2"], "sweep seeds with --seeds"),
    (["--grid", "model.latent_dim=8,8"], "a value is repeated"),
    (["--grid", "model.latent_dim=8,,16"], "an empty value"),
    (["--grid", "optim.learnin_rate=1e-3"], "no field 'optim.learnin_rate'; closest: optim.learning_rate"),
    (["--grid", "model.latent_dim=8,abc"], "model.latent_dim='abc': model.latent_dim takes a int"),
    (["--set", "batch_size=big"], "--set batch_size='big'"),
    (["--seeds", "0"], "--seeds='0': give a count >= 1"),
    (["--workers", "0"], "--workers=0 must be >= 1"),
])
def test_bad_sweep_command_lines_are_named(tmp_path, capsys, args, message):
  from jaxgen.sweep.__main__ import main
  rc = main([f"--config={GAN}:smoke", f"--root={tmp_path / 's'}", *args])
  err = capsys.readouterr().err
  assert rc == 2 and err.startswith("error: ") and message in err, err
  assert not os.path.exists(tmp_path / "s" / "sweep.json")


def test_a_root_holds_one_sweep(tmp_path):
  g = grid.parse_grid(["model.latent_dim=8,16"])
  a = runner.Sweep(f"{GAN}:smoke", g, [], [0], str(tmp_path))
  a.write_manifest()
  grid2 = grid.parse_grid(["model.latent_dim=8,16,32"])
  runner.Sweep(f"{GAN}:smoke", grid2, [], [0, 1], str(tmp_path)).write_manifest()   # more points: allowed
  manifest = json.load(open(tmp_path / "sweep.json"))
  assert len(manifest["points"]) == 6
  with pytest.raises(grid.SweepError, match="holds a sweep with --set"):
    runner.Sweep(f"{GAN}:smoke", g, [("batch_size", "32")], [0], str(tmp_path)).write_manifest()
  cmd = a.command(a.points[1])
  assert cmd[1:4] == ["-m", "experiments.gan_toy2d", f"--config={GAN}:smoke"]
  assert cmd[-3:] == ["--config.model.latent_dim=16", "--config.seed=0", f"--workdir={tmp_path}/latent_dim=16,seed=0"]
  assert a.cwd == ROOT and a.value(a.points[1], "model.latent_dim") == 16 and a.value(a.points[1], "batch_size") == 64


def test_worker_resources_split_cores_and_gpus():
  assert runner.worker_resources(2, [0, 1, 2, 3, 4], []) == [{"cores": [0, 1, 2], "gpus": None},
                                                            {"cores": [3, 4], "gpus": None}]
  assert runner.worker_resources(3, [0, 1], []) == [{"cores": [0], "gpus": None}, {"cores": [1], "gpus": None},
                                                    {"cores": [0], "gpus": None}]
  r = runner.worker_resources(2, list(range(16)), ["0", "1", "2", "3"])
  assert [x["gpus"] for x in r] == [["0", "1"], ["2", "3"]] and r[0]["cores"] == list(range(8))
  with pytest.raises(grid.SweepError, match="at most one worker per GPU"):
    runner.worker_resources(3, [0, 1, 2], ["0", "1"])


def test_slurm_script_runs_each_point_through_the_same_sweep(tmp_path):
  sweep = runner.Sweep(f"{GAN}:smoke", grid.parse_grid(["model.latent_dim=8,16"]), [], [0, 1, 2], str(tmp_path))
  args = [f"--config={GAN}:smoke", "--grid=model.latent_dim=8,16", "--seeds=3", f"--root={tmp_path}"]
  text = slurm.script(sweep, args, options=["--gres=gpu:1", "time=4:00:00"])
  assert "#SBATCH --array=0-5" in text and "#SBATCH --gres=gpu:1" in text and "#SBATCH --time=4:00:00" in text
  # B: signals the batch shell, which exec's the sweep (sbatch signals only job steps without it; none here)
  assert "#SBATCH --requeue" in text and "#SBATCH --signal=B:TERM@120" in text and "srun" not in text
  last = text.strip().splitlines()[-1]
  assert last.startswith("exec ") and last.endswith("--point=${SLURM_ARRAY_TASK_ID}") and "--seeds=3" in last


def _fake_point(root, name, values, seed, status, rows):
  workdir = os.path.join(root, name)
  os.makedirs(os.path.join(workdir, "checkpoints", str(rows[-1]["step"]) if rows else "x"), exist_ok=True)
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  if status:
    json.dump({"status": status, "pid": -1}, open(os.path.join(workdir, runner.STATUS_FILE), "w"))
  return {"index": 0, "name": name, "values": values, "seed": seed,
          "group": name.rsplit(",seed=", 1)[0], "workdir": workdir, "command": "..."}


def test_report_means_stds_best_row_and_unfinished_points(tmp_path, capsys):
  rng = np.random.default_rng(0)
  fids = {("1e-3", s): 10 + rng.random() for s in range(3)}
  fids.update({("3e-4", s): 20 + rng.random() for s in range(2)})
  points = []
  for (lr, s), fid in fids.items():
    rows = [{"step": 50, "train/loss": 1.0 / (s + 1)}, {"step": 100, "train/loss": 0.5},
            {"step": 100, "samples/fid": fid, "samples/recall": 0.5 + s / 10}]
    points.append(_fake_point(str(tmp_path), f"learning_rate={lr},seed={s}", [["optim.learning_rate", lr]], s,
                              "done", rows))
  points.append(_fake_point(str(tmp_path), "learning_rate=3e-4,seed=2", [["optim.learning_rate", "3e-4"]], 2,
                            None, [{"step": 40, "train/loss": 0.9}]))            # started by hand, not finished
  manifest = {"config": "experiments/ddpm_cifar.py:quick", "set": [], "grid": [["optim.learning_rate",
              ["1e-3", "3e-4"]]], "seeds": [0, 1, 2], "points": points,
              "num_train_steps": {p["name"]: 100 for p in points}}
  json.dump(manifest, open(tmp_path / "sweep.json", "w"))
  paths = report.report(str(tmp_path), ["samples/fid", "samples/recall"])
  out = capsys.readouterr()              # the report on stdout, its progress on stderr
  assert out.err.splitlines()[0] == "report: reading points 0/6 (0%)" and "reading points 6/6 (100%)" in out.err
  assert "report: plotting the loss curves of 6 point(s)" in out.err and "reading points" not in out.out
  with open(paths["summary_csv"]) as f:
    summary = list(csv.DictReader(f))
  a = [fids[("1e-3", s)] for s in range(3)]
  b = [fids[("3e-4", s)] for s in range(2)]
  assert math.isclose(float(summary[0]["samples/fid_seeds_mean"]), np.mean(a), rel_tol=1e-12)
  assert math.isclose(float(summary[0]["samples/fid_seeds_std"]), np.std(a, ddof=1), rel_tol=1e-12)
  assert math.isclose(float(summary[1]["samples/fid_seeds_mean"]), np.mean(b), rel_tol=1e-12)
  assert summary[0]["seeds_done"] == "3" and summary[1]["seeds_done"] == "2" and summary[1]["seeds"] == "3"
  assert summary[1]["status"] == "seed 2 partial (checkpoint 40)"
  md = open(paths["markdown"]).read()
  table = [l for l in md.splitlines() if l.startswith("| **best**")]
  assert len(table) == 1 and "| 1e-3 |" in table[0] and f"{np.mean(a):.4g} ± {np.std(a, ddof=1):.2g}" in table[0]
  assert "| learning_rate=3e-4,seed=2 | partial | 40/100 |" in md
  with open(paths["csv"]) as f:
    per_point = list(csv.DictReader(f))
  assert len(per_point) == 6 and per_point[-1]["status"] == "partial" and per_point[-1]["samples/fid"] == ""
  for key in ("metrics_plot", "loss_curves"):
    assert os.path.getsize(paths[key]) > 5000
  with pytest.raises(grid.SweepError, match="no point logged it"):
    report.report(str(tmp_path), ["samples/fd"])
  assert report.metric_mode("samples/fid") == "min" and report.metric_mode("samples/recall") == "max"
  assert report.metric_mode("test/classifier_accuracy") == "max" and report.metric_mode("test/bits_per_dim") == "min"
  with pytest.raises(grid.SweepError, match="--mode=min or --mode=max"):
    report.metric_mode("samples/weird")


def test_report_default_metrics_are_the_runs_declared_ones(tmp_path):
  # a flow run on 2-D points: its evaluations log test/nll_nats and test/kl_nats (no 'test/nll' exists)
  rows = [{"step": 10, "train/loss": 1.2, "train/nll_nats": 1.2},
          {"step": 10, "test/grid_mass": 0.99, "test/kl_nats": 0.1, "test/nll_nats": 2.9, "test/nll_nats_raw": 3.0}]
  point = _fake_point(str(tmp_path), "seed=0", [], 0, "done", rows)
  json.dump({"config": {"family": "flow", "evals": ["flow_heldout", "flow_density"]}},
            open(os.path.join(point["workdir"], "config.json"), "w"))
  present = sorted(k for r in rows for k in r if k != "step")
  row = {"workdir": point["workdir"]}
  assert report.default_metrics([row], present)[:3] == ["test/nll_nats", "test/nll_nats_raw", "test/kl_nats"]
  assert "train/loss" not in report.default_metrics([row], present)
  # no evaluation logged: the family's headline training metric; no config.json: any training loss
  train_only = ["train/grad_norm", "train/loss", "train/nll_nats"]
  assert report.default_metrics([row], train_only) == ["train/loss"]
  no_config = [{"workdir": str(tmp_path / "none")}]
  assert report.default_metrics(no_config, ["train/d_loss", "train/g_loss"]) == ["train/d_loss"]
  # a GAN's headline is its generator loss, as it declares
  json.dump({"config": {"family": "gan", "evals": []}}, open(os.path.join(point["workdir"], "config.json"), "w"))
  assert report.default_metrics([row], ["train/d_loss", "train/g_loss"]) == ["train/g_loss"]


def test_report_plots_every_metric_and_names_seed_statistics_apart(tmp_path):
  from PIL import Image
  metrics = ["samples/fid", "samples/kid", "samples/kid_std", "samples/precision", "samples/recall", "samples/is"]
  points = []
  for lr in ("1e-3", "3e-4"):
    for s in range(2):
      rows = [{"step": 10, "train/loss": 1.0}, {"step": 10, **{m: 0.1 * (s + 1) for m in metrics}}]
      points.append(_fake_point(str(tmp_path), f"learning_rate={lr},seed={s}", [["optim.learning_rate", lr]], s,
                                "done", rows))
  manifest = {"config": "experiments/ddpm_cifar.py:quick", "set": [], "grid": [["optim.learning_rate",
              ["1e-3", "3e-4"]]], "seeds": [0, 1], "points": points, "num_train_steps": {p["name"]: 10 for p in points}}
  json.dump(manifest, open(tmp_path / "sweep.json", "w"))
  paths = report.report(str(tmp_path), metrics, out=open(os.devnull, "w"))
  with open(paths["summary_csv"]) as f:
    header = next(csv.reader(f))
  # the logged samples/kid_std (a column of report.csv) and the spread of samples/kid over seeds differ in name
  assert "samples/kid_seeds_std" in header and "samples/kid_std_seeds_mean" in header
  assert "samples/kid_std" not in header
  with open(paths["csv"]) as f:
    assert "samples/kid_std" in next(csv.reader(f))
  width, height = Image.open(paths["metrics_plot"]).size
  assert (width, height) == (4 * 420, 2 * 340)            # six panels, four to a row: none dropped


def test_progress_comes_from_the_latest_attempt_only(tmp_path):
  log = tmp_path / "sweep.log"
  log.write_text("=== attempt 1\nstep 30/100 | loss 1\n")
  assert runner.progress_of(str(log)) == "step 30/100"
  with open(log, "a") as f:
    f.write("=== attempt 2\ncompiled train step in 3 s\n")
  assert runner.progress_of(str(log)) is None
