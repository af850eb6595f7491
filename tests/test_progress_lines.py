"""The progress line of long tasks other than training (jaxgen.train.logging.TaskProgress): a line at once,
then done/total, rate and ETA at most every few seconds, and a last line when done; the first (compiling) batch
left out of the rate. (tests/train/test_progress.py is the trainer's own progress.)"""
from jaxgen.train.logging import TaskProgress


class Clock:
  def __init__(self):
    self.t = 100.0

  def __call__(self):
    return self.t


def test_lines_rate_eta_and_the_last_line():
  clock, lines = Clock(), []
  p = TaskProgress(1000, "vlb", "ex", log=lines.append, every_s=5.0, note="compiling", clock=clock)
  assert lines == ["vlb 0/1000 (0%) | compiling"]               # at once: compiling is not silent
  clock.t += 20.0                                                # the first batch: 20 s, most of it compiling
  p.update(100)
  assert lines[-1] == "vlb 100/1000 (10%) | 5 ex/s | ETA 3:00"   # 100 in 20 s; 900 left
  clock.t += 1.0
  p.update(100)                                                  # 1 s later: no line (rate-limited)
  assert len(lines) == 2
  clock.t += 4.0
  p.update(100)                                                  # 200 in the 5 s since the first batch
  assert lines[-1] == "vlb 300/1000 (30%) | 40.0 ex/s | ETA 0:18"
  clock.t += 20.0
  p.update(700)                                                  # 900 in the 25 s since the first batch
  assert lines[-1] == "vlb 1000/1000 (100%) | 36.0 ex/s | took 0:45" and len(lines) == 4
  p.update(0)                                                    # the last line once only
  assert len(lines) == 4


def test_work_found_done_is_counted_but_not_credited_to_the_rate():
  clock, lines = Clock(), []
  p = TaskProgress(10, "samples", "img", log=lines.append, every_s=0.0, clock=clock)
  assert lines == ["samples 0/10 (0%)"]
  p.skip(6)                                                      # resumed chunks
  clock.t += 2.0
  p.update(2)
  assert lines[-1] == "samples 8/10 (80%) | 1 img/s | ETA 0:02"
  clock.t += 1.0
  p.update(2)
  assert lines[-1] == "samples 10/10 (100%) | 2 img/s | took 0:03"


def test_stages_and_a_quiet_start():
  clock, lines = Clock(), []
  p = TaskProgress(3, "convert", log=lines.append, clock=clock, quiet_start=True)
  assert lines == []
  p.stage("reading w.safetensors (2.0 MB)")
  clock.t += 65.0
  p.stage("converting 12 tensors")
  assert lines == ["convert 1/3 | reading w.safetensors (2.0 MB) | 0:00 elapsed",
                   "convert 2/3 | converting 12 tensors | 1:05 elapsed"]


def test_the_default_line_goes_to_stderr(capsys):
  TaskProgress(2, "features", "img").update(2)
  out = capsys.readouterr()
  assert out.out == "" and out.err.splitlines()[0] == "features 0/2 (0%)" and "features 2/2 (100%)" in out.err
