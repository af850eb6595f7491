"""Helpers used across modules are public and live in one place: TensorFlow's import (jaxgen.data.tf_import,
so jaxgen.data.ordering and jaxgen.data.tfds do not import each other), pyplot (jaxgen.train.images), a PID's
liveness (jaxgen.train.lock) and durations (jaxgen.train.logging); no module imports another's private name;
held-out data is read through the data spec's evaluation split (jaxgen.data.load_heldout)."""
import ast
import os

import jaxgen


def _library_files():
  root = os.path.dirname(jaxgen.__file__)
  for directory, _, files in os.walk(root):
    for name in files:
      if name.endswith(".py"):
        yield os.path.join(directory, name)


def test_no_private_name_is_imported_from_another_jaxgen_module():
  bad = []
  for path in _library_files():
    for node in ast.walk(ast.parse(open(path).read())):
      if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaxgen"):
        bad += [f"{path}: from {node.module} import {a.name}" for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")]
  assert not bad, bad


def _imports(module):
  out = set()
  for n in ast.walk(ast.parse(open(module.__file__).read())):
    if isinstance(n, ast.ImportFrom):
      out |= {n.module} | {f"{n.module}.{a.name}" for a in n.names}
    elif isinstance(n, ast.Import):
      out |= {a.name for a in n.names}
  return out


def test_ordering_and_tfds_share_the_tensorflow_import_without_a_circle():
  import jaxgen.data.ordering as ordering
  import jaxgen.data.tfds as tfds
  from jaxgen.data import tf_import
  assert "jaxgen.data.tf_import" in _imports(ordering) and "jaxgen.data.tf_import" in _imports(tfds)
  assert "jaxgen.data.tfds" not in _imports(ordering)          # tfds uses ordering; ordering needs only TF
  assert tfds.import_tf is tf_import.import_tf


def test_the_shared_helpers():
  from jaxgen.train.lock import pid_alive
  from jaxgen.train.logging import format_hms
  assert pid_alive(os.getpid())
  assert format_hms(3723) == "1:02:03" and format_hms(125) == "2:05"


def test_held_out_data_is_the_specs_evaluation_split(monkeypatch):
  import dataclasses

  import ml_collections

  import jaxgen.data as data
  spec = dataclasses.replace(data.get_dataset_spec("digits"), eval_split="validation")
  monkeypatch.setattr(data, "get_dataset_spec", lambda name: spec)
  asked = []
  monkeypatch.setattr(data, "load_split", lambda config, split: asked.append(split) or {})
  data.load_heldout(ml_collections.ConfigDict(dict(data=dict(name="digits"))))
  assert asked == ["validation"]
  # and no library module names the held-out split by a literal (jaxgen.data.load_heldout does it)
  literal = []
  for path in _library_files():
    for node in ast.walk(ast.parse(open(path).read())):
      if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "load_split"
          and any(isinstance(a, ast.Constant) and a.value == "test" for a in node.args)):
        literal.append(f"{path}:{node.lineno}")
  assert not literal, literal

