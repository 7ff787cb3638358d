"""The benchmarks run (tiny sizes, on the tests' 8 host devices) and print their ratios."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module):
  p = subprocess.run([sys.executable, "-m", module, "--quick"], cwd=ROOT, capture_output=True,
                     text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert p.returncode == 0, p.stderr[-3000:]
  return p.stdout


def test_frontends_bench_prints_ratios_against_librosa_and_peak_fractions():
  out = _run("mirjax.bench.frontends")
  assert "matmul peak" in out
  for feature in ("log-mel", "constant-Q", "chroma"):
    line = next(l for l in out.splitlines() if l.strip().startswith(feature))
    assert re.search(r"\d+\.\d\dx", line), line
  for name in ("rawconv", "sincnet", "modnet", "sincmodnet"):
    line = next(l for l in out.splitlines() if l.strip().startswith(name))
    assert re.search(r"\d+\.\d%$", line.strip()), line


def test_train_bench_prints_throughput_utilisation_and_memory():
  out = _run("mirjax.bench.train")
  assert "8 device(s)" in out and "examples/s" in out
  assert re.search(r"model FLOP utilisation: \d+\.\d%", out)
  assert re.search(r"PyTorch port: (skipped|.*mirjax / PyTorch = \d+\.\d\dx)", out)
  assert re.search(r"peak host memory of the mirjax run: \d+ MiB", out)
