"""Images/s of the input pipelines alone (no model): the in-memory TFDS pipeline and the streaming (Grain) one,
the latter reading in the training process (workers 0) and with Grain worker processes, on digits (8x8x1) and
shapes (32x32x3), so that the pipeline is never what limits training.

  python -m benchmarks.input_pipeline [--batches 200] [--batch 128] [--workers 0,2] [--data_dir /tmp/tfds_bench]

Prints a markdown table: data set, pipeline, workers, batch, first batch (s: preparation and start-up, worker
processes included), images/s after it.
"""
import argparse
import time

import ml_collections


def measure(name, pipeline, batch, batches, data_dir, workers=0):
  from jaxgen.data import streaming, tfds as jtfds
  config = ml_collections.ConfigDict(dict(name=name, data_dir=data_dir, download=True, random_flip=False,
                                          pipeline=pipeline, workers=workers))
  t0 = time.perf_counter()
  if pipeline == "streaming":
    it = streaming.make_train_iterator(config, global_batch_size=batch, seed=0, process_index=0, process_count=1)
  else:
    it = jtfds.make_train_iterator(config, global_batch_size=batch, seed=0, process_index=0, process_count=1)
  next(it)
  first = time.perf_counter() - t0
  t0 = time.perf_counter()
  for _ in range(batches):
    next(it)
  rate = batches * batch / (time.perf_counter() - t0)
  if hasattr(it, "close"):
    it.close()
  return first, rate


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--batches", type=int, default=200)
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--data_dir", default="/tmp/jaxgen_tfds_bench")
  p.add_argument("--datasets", default="digits,shapes")
  p.add_argument("--workers", default="0,2", help="the streaming pipeline's data.workers to measure, comma-separated")
  a = p.parse_args()
  from jaxgen.train.runtime import quiet_startup
  quiet_startup()
  runs = [("memory", 0)] + [("streaming", int(w)) for w in a.workers.split(",")]
  rows = []
  for name in a.datasets.split(","):
    for pipeline, workers in runs:
      if pipeline == "memory" or workers == 0:
        measure(name, pipeline, a.batch, 2, a.data_dir)          # prepare the data outside the timing
      first, rate = measure(name, pipeline, a.batch, a.batches, a.data_dir, workers)
      rows.append(f"| {name} | {pipeline} | {workers if pipeline == 'streaming' else ''} | {a.batch} | {first:.2f} | "
                  f"{rate:,.0f} |")
  print("| data set | pipeline | workers | batch | first batch s | images/s |\n|---|---|---:|---:|---:|---:|")
  print("\n".join(rows))


if __name__ == "__main__":
  main()
