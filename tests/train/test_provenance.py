"""Provenance in every workdir (command, config, git commit and dirty diff, packages, devices, XLA flags) and
the refusal of a changed config on resume (jaxgen.train.provenance)."""
import json
import os
import subprocess
import sys

import jax
import pytest

from experiments.gan_toy2d import get_config
from jaxgen.train import provenance, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(**overrides):
  config = get_config("smoke")
  config.update(tensorboard=False, sample_every=0, eval_every=0, evals=(), num_train_steps=4)
  for k, v in overrides.items():
    node = config
    *parents, leaf = k.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = v
  return config


def _git(*args):
  return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout


def test_a_run_records_its_provenance_and_each_start(tmp_path, capsys):
  workdir = str(tmp_path / "w")
  run.run(_config(), workdir, experiment="experiments.gan_toy2d")
  record = json.load(open(os.path.join(workdir, "config.json")))
  prov = record["provenance"]
  assert prov["argv"] == sys.argv and prov["cwd"] == os.getcwd() and prov["command"].startswith(sys.executable)
  assert prov["packages"]["jax"] == jax.__version__ and "flax" in prov["packages"] and "optax" in prov["packages"]
  assert record["runtime"]["devices"] == [str(d) for d in jax.devices()]
  assert record["runtime"]["XLA_FLAGS"] == os.environ.get("XLA_FLAGS", "")
  if _git("rev-parse", "HEAD"):                   # a git checkout (CI clones one)
    assert prov["git"]["repo"] == _git("rev-parse", "--show-toplevel").strip()
    assert prov["git"]["commit"] == _git("rev-parse", "HEAD").strip()
    dirty = bool(_git("status", "--porcelain", "--untracked-files=all").strip())
    assert prov["git"]["dirty"] == dirty
    assert ("diff_file" in prov) == dirty
    if dirty:
      assert os.path.getsize(os.path.join(workdir, prov["diff_file"])) > 0
  assert prov["start"] == 0 and prov["start_step"] == 0

  # A resume that trains longer (a safe change) is allowed, said, and recorded as a second start.
  run.run(_config(num_train_steps=6), workdir, experiment="experiments.gan_toy2d")
  assert f"note: resuming {workdir} with changed config (safe to resume): num_train_steps 4 -> 6" in \
      capsys.readouterr().out
  starts = [json.loads(l) for l in open(os.path.join(workdir, "provenance.jsonl"))]
  assert [s["start"] for s in starts] == [0, 1] and starts[1]["start_step"] == 4
  assert starts[1]["config_changes"] == {"num_train_steps": [4, 6]}
  assert json.load(open(os.path.join(workdir, "config.json")))["provenance"]["start"] == 1


def test_a_changed_config_on_resume_is_refused_naming_the_fields(tmp_path, capsys):
  workdir = str(tmp_path / "w")
  run.run(_config(), workdir, experiment="experiments.gan_toy2d")
  steps_before = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
  with pytest.raises(run.ConfigError) as info:
    run.run(_config(num_train_steps=6, batch_size=32, **{"model.latent_dim": 8}), workdir,
            experiment="experiments.gan_toy2d")
  message = str(info.value)
  assert "batch_size 64 -> 32" in message and "model.latent_dim 16 -> 8" in message
  assert "num_train_steps" not in message and "--allow_config_change" in message
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == steps_before    # nothing ran
  assert len(open(os.path.join(workdir, "provenance.jsonl")).readlines()) == 1

  # Intended: the flag lets it through, and the change is recorded.
  capsys.readouterr()
  run.run(_config(num_train_steps=6, **{"optim.ema_decay": 0.5}), workdir, experiment="experiments.gan_toy2d",
          allow_config_change=True)
  out = capsys.readouterr().out
  assert "allowed by --allow_config_change" in out and "optim.ema_decay 0.9 -> 0.5" in out
  last = json.loads(open(os.path.join(workdir, "provenance.jsonl")).readlines()[-1])
  assert last["config_changes"]["optim.ema_decay"] == [0.9, 0.5]


def test_config_diff_and_the_safe_fields():
  old = {"a": 1, "num_train_steps": 10, "eval": {"fid_samples": 5}, "model": {"ch_mult": [1, 2]}, "gone": 3}
  new = {"a": 1, "num_train_steps": 20, "eval": {"fid_samples": 6}, "model": {"ch_mult": (1, 2)}, "added": 4}
  assert provenance.config_diff(old, new) == {"eval.fid_samples": (5, 6), "gone": (3, "<absent>"),
                                              "num_train_steps": (10, 20)}
  assert provenance.is_safe_to_resume("eval.fid_samples") and provenance.is_safe_to_resume("diffusion.sampler", "ddpm")
  assert not provenance.is_safe_to_resume("gone")
  assert not provenance.is_safe_to_resume("diffusion.num_timesteps", "ddpm")
  # a family's own safe fields (its registry entry) are safe for its runs only
  assert provenance.is_safe_to_resume("gan.truncation", "gan") and not provenance.is_safe_to_resume("gan.truncation")
  assert not provenance.is_safe_to_resume("diffusion.sampler", "gan")
  assert not provenance.is_safe_to_resume("diffusion.sampler", "no_such_family")
  assert provenance.is_safe_to_resume("model.remat", "ddpm") and not provenance.is_safe_to_resume("model.remat", "vae")
  assert not provenance.is_safe_to_resume("data.name") and not provenance.is_safe_to_resume("optim.learning_rate")


def test_git_state_of_a_dirty_tree(tmp_path):
  repo = tmp_path / "repo"
  repo.mkdir()
  env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
             GIT_COMMITTER_EMAIL="t@t")
  git = lambda *a: subprocess.run(["git", *a], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout
  git("init", "-q")
  (repo / "a.py").write_text("x = 1\n")
  git("add", "a.py")
  git("commit", "-q", "-m", "one")
  info, diff = provenance.git_state(str(repo))
  assert info["commit"] == git("rev-parse", "HEAD").strip() and info["dirty"] is False and diff == ""
  (repo / "a.py").write_text("x = 2\n")
  (repo / "new.py").write_text("y = 1\n")
  info, diff = provenance.git_state(str(repo / "a.py"))
  assert info["dirty"] is True and info["changed_files"] == 1 and info["untracked"] == ["new.py"]
  assert "-x = 1" in diff and "+x = 2" in diff and "# untracked: new.py" in diff
  info, _ = provenance.git_state(str(tmp_path))
  assert info["repo"] is None and "not in a git checkout" in info["note"]


def test_the_runs_family_decides_its_own_safe_fields(tmp_path, capsys):
  # a workdir with a checkpoint and a config.json: the change check reads the run's family from it
  def workdir(family, **config):
    d = tmp_path / family
    (d / "checkpoints" / "1").mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"config": dict(family=family, **config)}))
    return str(d)
  ddpm = workdir("ddpm", diffusion={"sampler": "ancestral", "num_timesteps": 50})
  changes = provenance.check_config_change(ddpm, {"family": "ddpm", "diffusion": {"sampler": "ddim",
                                                                                  "num_timesteps": 50}})
  assert changes == {"diffusion.sampler": ["ancestral", "ddim"]} and "safe to resume" in capsys.readouterr().out
  with pytest.raises(provenance.ConfigChanged, match="diffusion.num_timesteps 50 -> 10"):
    provenance.check_config_change(ddpm, {"family": "ddpm", "diffusion": {"sampler": "ancestral", "num_timesteps": 10}})
  gan = workdir("gan", gan={"truncation": 0.0})
  assert provenance.check_config_change(gan, {"family": "gan", "gan": {"truncation": 0.5}})
  vae = workdir("vae", gan={"truncation": 0.0})            # not a GAN run: its safe fields do not apply
  with pytest.raises(provenance.ConfigChanged, match="gan.truncation"):
    provenance.check_config_change(vae, {"family": "vae", "gan": {"truncation": 0.5}})
