"""jaxgen's own TFDS builders (offline data) and what they share."""

MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
  """A fixed 64-bit integer hash (the SplitMix64 finaliser): the same on every machine and library version, so
  data drawn from it (splits, procedural scenes) never depend on a random-number generator's implementation."""
  x = (x + 0x9E3779B97F4A7C15) & MASK64
  x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
  x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
  return x ^ (x >> 31)
