"""What the weight converters share: checking that a mapped state dict fits the Flax params it must become.

Each converter (jaxgen.diffusion.convert_diffusers, jaxgen.clip.convert_hf, jaxgen.ldm.convert_diffusers) maps
every source tensor to a flat Flax path, collecting the keys it does not know and those two keys map to; this
module names every fault at once (unknown keys, keys used twice, missing parameters, unexpected keys, wrong
shapes) in one ValueError, so a user sees the whole mismatch, not the first of it.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

Path = Tuple[str, ...]


def flat_shapes(tree) -> Dict[Path, Tuple[int, ...]]:
  """{flat path: shape} of a (possibly abstract) params pytree."""
  from flax import traverse_util
  from flax.core import unfreeze
  return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(unfreeze(tree)).items()}


def check_fit(have: Mapping[Path, Any], source: Mapping[Path, str], want: Mapping[Path, Tuple[int, ...]],
              state_dict: Mapping[str, Any], *, unknown: List[str], duplicated: List[str], what: str) -> None:
  """ValueError naming every fault of the mapped tensors `have` ({path: array}, `source` their keys) against the
  shapes `want`; `what` says whose state dict does not fit what (e.g. "the diffusers state dict does not fit
  jaxgen's U-Net")."""
  missing = sorted("/".join(p) for p in set(want) - set(have))
  unexpected = sorted(f"{source[p]} (-> {'/'.join(p)})" for p in set(have) - set(want))
  wrong = sorted(f"{source[p]} {tuple(np.shape(state_dict[source[p]]))} -> {'/'.join(p)} needs {tuple(want[p])}"
                 for p in set(have) & set(want) if tuple(np.shape(have[p])) != tuple(want[p]))
  problems = [(name, items) for name, items in (("unknown keys", unknown), ("keys used twice", duplicated),
                                                 ("missing parameters", missing), ("unexpected keys", unexpected),
                                                 ("wrong shapes", wrong)) if items]
  if problems:
    raise ValueError(f"{what}: " + "; ".join(
        f"{len(items)} {name}: {', '.join(items[:8])}{', ...' if len(items) > 8 else ''}" for name, items in problems))


def converter_main(argv, *, usage: str, doc: str, convert, done) -> int:
  """A converter's command line `python -m MODULE SRC_DIR DST`: 0, or 2 with one 'error:' line (or the usage)
  on stderr; -h / --help: the usage and `doc` (the module's description) on stdout, 0. `convert(src, dst)`
  returns a record; `done(record, dst)` the line printed on success. OSError and ValueError (missing or
  unwritable files, a model that cannot be mapped) are the one-line errors."""
  import sys
  argv = sys.argv[1:] if argv is None else list(argv)
  if any(a in ("-h", "--help", "-help") for a in argv):
    print(usage + "\n\n" + doc.strip(), flush=True)
    return 0
  if len(argv) != 2 or argv[0].startswith("-"):
    print(usage, file=sys.stderr)
    return 2
  src, dst = argv
  try:
    converted = convert(src, dst)
  except (OSError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    return 2
  print(done(converted, dst), flush=True)
  return 0
