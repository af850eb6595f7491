"""The trainer's progress: throughput named by the data's kind (perf/images_per_sec for images,
perf/examples_per_sec for points) and the progress line's unit."""
import pytest

from jaxgen.train import logging as tlog


def test_throughput_is_named_by_the_data_kind(monkeypatch):
  clock = iter([0.0, 2.0])
  monkeypatch.setattr(tlog.time, "perf_counter", lambda: next(clock))
  points = tlog.Progress(100, 0, batch_size=256, kind="points")
  points.start(0)
  rates = points.report(10)                         # 10 steps of 256 points in 2 s
  assert rates["examples_per_sec"] == 1280.0 and "images_per_sec" not in rates
  assert "1280.0 ex/s" in tlog.format_progress(10, 100, {"train/loss": 0.5}, rates)
  assert tlog.Progress(100, 0, 8).rate_name == "images_per_sec" == tlog.throughput_name(None)
  assert "2.0 img/s" in tlog.format_progress(1, 2, {}, {"images_per_sec": 2.0, "eta_sec": 1.0})
  with pytest.raises(ValueError, match="kind='audio'"):
    tlog.Progress(1, 0, 1, kind="audio")
