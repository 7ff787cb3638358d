"""The benchmarks run (tiny sizes, on the tests' 8 host devices) and the figures they print
agree with each other: every ratio and fraction is the quotient of the figures printed
beside it (to their printed rounding), rates and times are positive and finite, and the
features compared with librosa really match it."""
import math
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM = r"(\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


def _run(module):
  p = subprocess.run([sys.executable, "-m", module, "--quick"], cwd=ROOT, capture_output=True,
                     text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert p.returncode == 0, p.stderr[-3000:]
  return p.stdout


def _figures(pattern, line):
  m = re.search(pattern, line)
  assert m, (pattern, line)
  values = [float(v) for v in m.groups()]
  assert all(math.isfinite(v) and v > 0 for v in values), line
  return values


def _agrees(printed, digits, value, *operands):
  """`printed` (rounded to `digits` decimals) is `value`, a product or quotient of the
  printed `operands` ((figure, decimals) pairs): equal within what the roundings allow."""
  half = lambda d: 0.5 * 10.0 ** -d
  slack = half(digits) + abs(value) * sum(half(d) / v for v, d in operands) * 1.01
  return abs(printed - value) <= slack


def test_frontends_bench_figures_are_consistent_and_match_librosa():
  out = _run("mirjax.bench.frontends")
  (peak,) = _figures(rf"matmul peak of all 8 device\(s\) at once: {NUM} GFLOP/s", out)
  lines = out.splitlines()
  # Largest difference from librosa, of librosa's peak (tests/test_audio*.py bound these
  # more tightly on longer signals; the constant-Q edge frames of 2 s clips differ most).
  max_diff = {"log-mel": 1e-4, "constant-Q": 2.5e-2, "chroma": 1e-4}
  for feature, bound in max_diff.items():
    line = next(l for l in lines if l.strip().startswith(feature))
    ours, ref, ratio, diff = _figures(rf"\)\s+{NUM}\s+{NUM}\s+{NUM}x\s+{NUM}$", line.strip())
    assert _agrees(ratio, 2, ours / ref, (ours, 1), (ref, 1)), line  # mirjax clips/s / librosa's
    assert diff <= bound, line
  for name in ("rawconv", "sincnet", "modnet", "sincmodnet"):
    line = next(l for l in lines if l.strip().startswith(name))
    rate, achieved, percent = _figures(rf"^{name}\s+{NUM}\s+{NUM}\s+{NUM}%$", line.strip())
    assert _agrees(percent, 1, 100 * achieved / peak, (achieved, 1), (peak, 1)), line  # GFLOP/s / peak


def test_train_bench_figures_are_consistent():
  out = _run("mirjax.bench.train")
  batch, _, devices, _ = _figures(rf"batch {NUM} x {NUM} s, {NUM} device\(s\), mean of {NUM} steps", out)
  assert devices == 8
  rate, ms = _figures(rf"mirjax:\s+{NUM} examples/s\s+\({NUM} ms/step\)", out)
  assert _agrees(rate, 1, 1000 * batch / ms, (ms, 1)), out  # examples/s = batch / step time
  percent, gflop, peak = _figures(
      rf"model FLOP utilisation: {NUM}% \({NUM} GFLOP/step by XLA's count, peak {NUM} GFLOP/s "
      r"of the 8 device\(s\)\)", out)
  # utilisation = FLOPs per step / step time / peak
  assert _agrees(percent, 1, 1e5 * gflop / ms / peak, (gflop, 2), (ms, 1), (peak, 1)), out
  if "PyTorch port: skipped" not in out:
    torch_rate, torch_ms, speedup = _figures(
        rf"PyTorch port:\s+{NUM} examples/s\s+\({NUM} ms/step\)\s+-> mirjax / PyTorch = {NUM}x", out)
    assert _agrees(torch_rate, 1, 1000 * batch / torch_ms, (torch_ms, 1)), out
    assert _agrees(speedup, 2, torch_ms / ms, (torch_ms, 1), (ms, 1)), out  # PyTorch's step time / mirjax's
  (rss,) = _figures(rf"peak host memory of the mirjax run: {NUM} MiB", out)
  assert 100 <= rss <= 64 * 1024  # JAX alone takes over 100 MiB
