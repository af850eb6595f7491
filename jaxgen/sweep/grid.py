"""A sweep's points: the grid (`--grid 'field=v1,v2'`, repeatable) times the seeds, with fixed overrides
(`--set field=value`), checked against the experiment's config before anything runs. No JAX here.

A point's name is built from its grid values and seed, in the order the grid was given, e.g.
`learning_rate=1e-3,ema_decay=0.99,seed=0` (the last part of each dotted field, or the whole name where two
fields share their last part), so the same command gives the same workdirs on every rerun.
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.util
import itertools
import os
import re
from typing import Any, Dict, List, Sequence, Tuple


class SweepError(ValueError):
  """A bad sweep command line (named value, what is allowed), found before any point runs."""


@dataclasses.dataclass(frozen=True)
class Point:
  index: int
  name: str
  values: Tuple[Tuple[str, str], ...]        # ((dotted field, value as typed), ...) from the grid, in grid order
  seed: int

  def overrides(self) -> Dict[str, str]:
    return dict(self.values)

  @property
  def group(self) -> str:
    """The name without the seed: the points that differ only in their seed share it."""
    return self.name.rsplit(",seed=", 1)[0] if self.values else "all"


def split_values(text: str) -> List[str]:
  """'1e-3,3e-4' -> ['1e-3', '3e-4']; commas inside brackets or quotes do not split ('(1,2),(1,2,2)')."""
  out, depth, quote, current = [], 0, None, ""
  for ch in text:
    if quote:
      quote = None if ch == quote else quote
    elif ch in "'\"":
      quote = ch
    elif ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
    elif ch == "," and depth == 0:
      out.append(current.strip())
      current = ""
      continue
    current += ch
  out.append(current.strip())
  return out


def parse_assignment(text: str, what: str) -> Tuple[str, str]:
  field, sep, value = text.partition("=")
  field = field.strip()
  if field.startswith("config."):
    field = field[len("config."):]
  if not sep or not field or not value.strip():
    raise SweepError(f"{what} {text!r}: expected FIELD=VALUE (e.g. {what} 'optim.learning_rate=1e-3,3e-4')")
  return field, value.strip()


def parse_grid(specs: Sequence[str]) -> List[Tuple[str, List[str]]]:
  grid, seen = [], set()
  for spec in specs:
    field, values = parse_assignment(spec, "--grid")
    if field == "seed":
      raise SweepError(f"--grid {spec!r}: sweep seeds with --seeds=N (or --seeds=0,4,7), not a grid over 'seed'")
    if field in seen:
      raise SweepError(f"--grid {spec!r}: field {field} is given twice")
    seen.add(field)
    vals = split_values(values)
    if any(not v for v in vals):
      raise SweepError(f"--grid {spec!r}: an empty value (check the commas)")
    if len(set(vals)) != len(vals):
      raise SweepError(f"--grid {spec!r}: a value is repeated")
    grid.append((field, vals))
  return grid


def parse_seeds(text: str) -> List[int]:
  """'3' -> [0, 1, 2]; '0,4,7' -> [0, 4, 7]."""
  try:
    if "," in text:
      seeds = [int(s) for s in text.split(",")]
    else:
      n = int(text)
      if n < 1:
        raise ValueError
      seeds = list(range(n))
  except ValueError:
    raise SweepError(f"--seeds={text!r}: give a count >= 1 (seeds 0..N-1) or a comma-separated list of "
                     f"integers") from None
  if len(set(seeds)) != len(seeds):
    raise SweepError(f"--seeds={text!r}: a seed is repeated")
  return seeds


def load_config(spec: str):
  """The ConfigDict of `path/to/experiment.py[:preset]`."""
  path, _, preset = spec.partition(":")
  if not os.path.isfile(path):
    raise SweepError(f"--config={spec!r}: {path} is not a file (expected experiments/<name>.py[:preset])")
  module_spec = importlib.util.spec_from_file_location("_jaxgen_sweep_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise SweepError(f"--config={spec!r}: {path} has no get_config(preset) (is it an experiment file?)")
  try:
    return module.get_config(preset) if preset else module.get_config()
  except ValueError as e:
    raise SweepError(f"--config={spec!r}: {e}") from None


def _fields(config, prefix=""):
  out = {}
  for k, v in config.items():
    name = f"{prefix}{k}"
    if hasattr(v, "items") and not isinstance(v, (str, bytes)):
      out.update(_fields(v, name + "."))
    else:
      out[name] = v
  return out


def parse_value(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text                                   # a bare string: name=digits


def check_value(field: str, text: str, default, what: str):
  """The value of `text` for `field` (whose default is `default`); SweepError when its type cannot be that
  field's (the experiment's own flag parser would refuse it after its imports)."""
  value = parse_value(text)
  if default is None:
    return value
  kind = type(default)
  ok = (isinstance(value, kind) or (kind is float and isinstance(value, int) and not isinstance(value, bool))
        or (kind in (tuple, list) and isinstance(value, (tuple, list))))
  if kind is bool:
    ok = isinstance(value, bool) or text.lower() in ("true", "false")
  elif kind is str:
    ok = True                                     # '1' is a fine string value
  if not ok:
    raise SweepError(f"{what} {field}={text!r}: {field} takes a {kind.__name__} (the preset's value is "
                     f"{default!r})")
  return value


def check_fields(config, assignments: Sequence[Tuple[str, str]], what: str) -> None:
  fields = _fields(config)
  for field, text in assignments:
    if field not in fields:
      close = difflib.get_close_matches(field, list(fields), n=3, cutoff=0.5)
      hint = f"; closest: {', '.join(close)}" if close else ""
      raise SweepError(f"{what} {field}=...: the config has no field {field!r}{hint}")
    check_value(field, text, fields[field], what)


def _short_names(fields: Sequence[str]) -> Dict[str, str]:
  last = [f.rsplit(".", 1)[-1] for f in fields]
  return {f: (l if last.count(l) == 1 and l != "seed" else f) for f, l in zip(fields, last)}


_UNSAFE = re.compile(r"[^A-Za-z0-9._+\-]")     # in a value: '(1,2)' -> '_1_2_' (',' and '=' separate the parts)


def point_name(values: Sequence[Tuple[str, str]], seed: int, short: Dict[str, str]) -> str:
  return ",".join([f"{short[f]}={_UNSAFE.sub('_', v)}" for f, v in values] + [f"seed={seed}"])


def expand(grid: Sequence[Tuple[str, List[str]]], seeds: Sequence[int]) -> List[Point]:
  """Every combination of the grid's values (the first field varying slowest), each with every seed."""
  short = _short_names([f for f, _ in grid])
  combos = itertools.product(*[[(f, v) for v in vals] for f, vals in grid]) if grid else [()]
  points = []
  for combo in combos:
    for seed in seeds:
      points.append(Point(len(points), point_name(combo, seed, short), tuple(combo), int(seed)))
  names = [p.name for p in points]
  dup = sorted({n for n in names if names.count(n) > 1})
  if dup:
    raise SweepError(f"two points would share the workdir {dup[0]!r} (values that differ only in characters "
                     f"that are not allowed in a directory name); write the values differently")
  return points
