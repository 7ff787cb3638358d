"""The benchmarks run (tiny sizes, on the tests' 8 host devices) and the figures they print
agree with each other: every ratio and fraction is the quotient of the figures printed
beside it (to their printed rounding), rates and times are positive and finite, and the
features compared with librosa really match it."""
import math
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM = r"(\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


def _run(module, *flags):
  p = subprocess.run([sys.executable, "-m", module, "--quick", *flags], cwd=ROOT, capture_output=True,
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
  max_diff = {"log-mel": 1e-4, "constant-Q": 2.5e-2, "spectral contrast": 1e-3, "chroma": 1e-4}
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
  blocks = re.split(r"\n(?=\S)", out)[1:]  # one block per model, then the memory line's
  assert [b.split(" (")[0] for b in blocks[:2]] == ["flagship", "log-mel short-chunk CNN, Won et al.'s depth at 1/16 width"], out
  for block in blocks[:2]:
    batch, _, devices, _, _ = _figures(rf"batch {NUM} x {NUM} s, {NUM} device\(s\), median of {NUM} interleaved "
                                       rf"round\(s\) of {NUM} steps", block)
    assert devices == 8
    rate, ms = _figures(rf"mirjax:\s+{NUM} examples/s\s+\({NUM} ms/step\)", block)
    assert _agrees(rate, 1, 1000 * batch / ms, (ms, 1)), block  # examples/s = batch / step time
    percent, gflop, peak = _figures(
        rf"model FLOP utilisation: {NUM}% \({NUM} GFLOP/step by XLA's count, peak {NUM} GFLOP/s "
        r"of the 8 device\(s\)\)", block)
    # utilisation = FLOPs per step / step time / peak
    assert _agrees(percent, 1, 1e5 * gflop / ms / peak, (gflop, 2), (ms, 1), (peak, 1)), block
    if "PyTorch port: skipped" in block:
      continue
    # before timing, the port with mirjax's weights was checked to compute the same function
    checked = {k: (float(rel), float(tol)) for k, _, rel, tol in re.findall(
        rf"\n    ([a-z -]+):\s+{NUM}\s+relative {NUM} <= {NUM}", block)}
    assert {"logits", "loss", "eval logits", "batch stats", "back-end gradients"} <= set(checked), block
    assert all(rel <= tol for rel, tol in checked.values()) and checked["logits"][1] <= 1e-4, block
    torch_ms = {}
    for mode in ("eager NCHW", "eager channels_last", "torch.compile"):
      t_rate, t_ms = _figures(rf"PyTorch {mode}:\s+{NUM} examples/s\s+\({NUM} ms/step\)", block)
      assert _agrees(t_rate, 1, 1000 * batch / t_ms, (t_ms, 1)), block
      torch_ms[mode] = t_ms
    m = re.search(rf"-> mirjax / PyTorch's fastest \((.+)\) = {NUM}x", block)
    assert m and m.group(1) == min(torch_ms, key=torch_ms.get), block
    assert _agrees(float(m.group(2)), 2, torch_ms[m.group(1)] / ms, (torch_ms[m.group(1)], 1), (ms, 1)), block
  (rss,) = _figures(rf"peak host memory of the mirjax run: {NUM} MiB", out)
  assert 100 <= rss <= 64 * 1024  # JAX alone takes over 100 MiB


def test_pipeline_bench_figures_are_consistent():
  out = _run("mirjax.bench.pipeline")
  _, _, batch, devices, _, cores = _figures(
      rf"\(embedded/smoke, {NUM} training clips\): shuffle, {NUM}-sample crop, batch {NUM}, to {NUM} "
      rf"device\(s\); {NUM} batches per setting, {NUM} core\(s\)", out)
  assert devices == 8 and batch == 16
  rates = {}
  for threads, rate, per in re.findall(rf"(\d+) read thread\(s\):\s+{NUM} examples/s\s+\({NUM} per thread\)", out):
    rates[int(threads)] = float(rate)
    assert _agrees(float(per), 1, float(rate) / int(threads), (float(rate), 1)), out
  assert 1 in rates and len(rates) >= 1
  workers = {}  # data.worker_processes: by default as many counts as threads
  for n, rate, per in re.findall(rf"(\d+) worker process\(es\), 1 read thread each:\s+{NUM} examples/s\s+"
                                 rf"\({NUM} per process\)", out):
    workers[int(n)] = float(rate)
    assert _agrees(float(per), 1, float(rate) / int(n), (float(rate), 1)), out
  assert sorted(workers) == sorted(rates), out
  w_rate, most, t_rate, t_best, w_ratio = _figures(
      rf"worker processes against threads: {NUM} examples/s at {NUM} worker\(s\), {NUM} at {NUM} thread\(s\) "
      rf"-> {NUM}x", out)
  assert workers[int(most)] == w_rate == max(workers.values()) and rates[int(t_best)] == t_rate == max(rates.values())
  assert _agrees(w_ratio, 2, w_rate / t_rate, (w_rate, 1), (t_rate, 1)), out
  step, ratio, best = _figures(rf"train step here:\s+{NUM} examples/s -> input / step = {NUM}x at {NUM} thread", out)
  assert rates[int(best)] == max(rates.values())
  assert _agrees(ratio, 2, rates[int(best)] / step, (rates[int(best)], 1), (step, 1)), out
  target, needed, per_thread = _figures(rf"a step of {NUM} examples/s needs {NUM} read thread\(s\) at the best "
                                        rf"rate per thread \({NUM} examples/s\)", out)
  assert target == step and needed >= 1  # the fewest threads whose rate reaches the target
  assert (needed - 1) * per_thread < 1.001 * target <= 1.002 * needed * per_thread, out


def test_accelerator_bench_figures_are_consistent():
  from mirjax.bench import accelerator
  assert accelerator.bf16_peak("NVIDIA H100 80GB HBM3") == 989e12 and accelerator.bf16_peak("NVIDIA H100 PCIe") == 756e12
  assert accelerator.bf16_peak("TPU v5 lite") == 197e12 and accelerator.bf16_peak("cpu") is None
  out = _run("mirjax.bench.accelerator")
  (peak,) = _figures(rf"the float32 matmul peak measured here, {NUM} TFLOP/s per device, x 8 device", out)
  lines = re.findall(rf", (float32|bfloat16), batch {NUM}: +{NUM} examples/s, +{NUM} ms/step, {NUM} GFLOP/step, "
                     rf"MFU {NUM}%, {NUM} GiB per device", out)
  assert [d for d, *_ in lines] == ["float32", "bfloat16", "float32"], out  # --quick: the CNN in float32 only
  rates = []
  for _, batch, rate, ms, gflop, mfu, gib in lines:
    batch, rate, ms, gflop, mfu = map(float, (batch, rate, ms, gflop, mfu))
    assert _agrees(rate, 1, 1000 * batch / ms, (ms, 1)), out
    assert _agrees(mfu, 1, 1e5 * gflop / ms / (peak * 1e3 * 8), (gflop, 2), (ms, 1), (peak, 4)), out
    assert 0 < float(gib) < 64
    rates.append(rate)
  pipe, ratio, threads = _figures(rf"batch 16\): {NUM} examples/s -> input / the flagship's fastest step = {NUM}x; "
                                  rf"a step that fast needs {NUM} of this host's read threads", out)
  assert _agrees(ratio, 2, pipe / max(rates[:2]), (pipe, 1), (max(rates[:2]), 1)), out
  assert threads >= 1


def _small_port_config(port, **frontend):
  """A bench.train model ("flagship" or "melcnn" port) at test size: a 3-block back-end."""
  from mirjax import config as config_lib
  config = config_lib.from_file("sincmodnet" if port == "flagship" else "melcnn")
  config.model.backend.channels, config.model.backend.dense = (8, 8, 16), 16
  for k, v in frontend.items():
    config.model.frontend[k] = v
  return config


@pytest.mark.parametrize("port, frontend", [("flagship", {}),
                                            ("flagship", {"compression": "power", "mod_subsample": 2.0}),
                                            ("melcnn", {"n_mels": 32})])
def test_torch_ports_compute_mirjax_function(port, frontend):
  """The PyTorch ports bench.train times, given a mirjax model's weights (the back-end's
  batch statistics, scales and biases made random, so every one is copied to its place),
  compute mirjax's function in float32: logits, loss, gradients, updated batch statistics
  and eval-mode logits within torch_port.TOLERANCES (outputs 1e-4 of their scale). At this
  size no max-pool near-tie resolves differently, so the front-end's gradients agree to
  1e-3 too: there the top sinc band's cut-off sits exactly on Nyquist, and torch.clamp,
  which passes the whole gradient at a bound where jnp.clip passes half, was 2.6e-2 off.
  Runs only where PyTorch is installed."""
  pytest.importorskip("torch")
  import numpy as np
  from mirjax.bench import torch_port
  from mirjax.bench.flagship import synthetic_batch

  config = _small_port_config(port, **frontend)
  params, model_state, _ = torch_port.initial_variables(config)
  rng = np.random.default_rng(0)
  shake = lambda tree: {k: shake(v) if isinstance(v, dict) else
                        (np.abs(v) + rng.uniform(0.5, 1.5, v.shape) if k in ("scale", "var")
                         else v + 0.1 * rng.standard_normal(v.shape)).astype(np.float32)
                        for k, v in tree.items()}
  params = {**params, "backend": shake(params["backend"])}
  model_state = {"batch_stats": shake(model_state["batch_stats"])}
  batch = synthetic_batch(4, 1.0)
  diffs = torch_port.compare(config, batch, port, variables=(params, model_state))
  torch_port.check(diffs)
  assert diffs["logits"][1] <= 1e-4 and diffs["eval logits"][1] <= 1e-4, diffs
  if port == "flagship":
    assert diffs["front-end gradients"][1] <= 1e-3, diffs
  with pytest.raises(ValueError, match="missing"):  # a parameter left without a value
    torch_port.load_mirjax(getattr(torch_port, port)(config.model, 19), {"backend": {}})


def test_speaker_bench_figures_are_consistent():
  out = _run("mirjax.bench.speaker")
  _, batch, _, devices, _ = _figures(
      rf"\({NUM} M parameters\), batch {NUM} x {NUM} s at 16 kHz, {NUM} device\(s\), median of {NUM}", out)
  assert devices == 8
  rate, ms = _figures(rf"mirjax:\s+{NUM} utterances/s\s+\({NUM} ms/batch\)", out)
  assert _agrees(rate, 2, 1000 * batch / ms, (ms, 1)), out  # utterances/s = batch / batch time
  if "PyTorch port: skipped (PyTorch is not installed" in out:
    return
  torch_rate, torch_ms, _, speedup = _figures(
      rf"PyTorch port:\s+{NUM} utterances/s\s+\({NUM} ms/batch, torch \S+, {NUM} thread\(s\)\)"
      rf"\s+-> mirjax / PyTorch = {NUM}x", out)
  assert _agrees(torch_rate, 2, 1000 * batch / torch_ms, (torch_ms, 1)), out
  assert _agrees(speedup, 2, rate / torch_rate, (rate, 2), (torch_rate, 2)), out  # the rates' quotient
  m = re.search(rf"largest difference of the embeddings \(same weights\): {NUM} of mirjax's largest", out)
  assert m and float(m.group(1)) <= 1e-4, out  # the port with mirjax's weights computes the same embeddings


def test_speaker_port_computes_mirjax_embeddings():
  """The PyTorch port the speaker bench times, with a mirjax model's weights (batch
  statistics, scales and biases made random, so every one is copied to its place), gives
  mirjax's embeddings: it does the same work. Runs only where PyTorch is installed."""
  torch = pytest.importorskip("torch")
  import jax
  import numpy as np
  from mirjax.bench import speaker_port
  from mirjax.models import speaker

  cfg = speaker.speaker_config("audio", "cpu")
  model = speaker.build(cfg, n_classes=2)
  rng = np.random.default_rng(0)
  audio = (0.1 * rng.standard_normal((3, 12345))).astype(np.float32)  # not a multiple of the hop
  variables = jax.device_get(model.init(jax.random.key(0), audio[:1]))
  variables = jax.tree_util.tree_map_with_path(
      lambda path, v: (np.abs(v) + rng.uniform(0.5, 1.5, v.shape) if path[-1].key in ("var", "scale")
                       else v + 0.1 * rng.standard_normal(v.shape)).astype(np.float32), variables)
  want = np.asarray(model.apply(variables, audio, method="embeddings")["audio"])
  port = speaker_port.load_flax(speaker_port.audio_encoder(cfg), variables)
  with torch.inference_mode():
    got = port(torch.from_numpy(audio)).numpy()
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())


def test_scattering_bench_figures_are_consistent_and_match_kymatio():
  out = _run("mirjax.bench.scattering")
  mirjax_rate, devices = _figures(rf"mirjax\s+{NUM} clips/s \({NUM} devices\)", out)
  assert devices == 8
  (kymatio_rate,) = _figures(rf"kymatio\s+{NUM} clips/s", out)
  ratio, diff = _figures(rf"ratio\s+{NUM}x\s+largest difference {NUM} of the largest coefficient", out)
  assert _agrees(ratio, 2, mirjax_rate / kymatio_rate, (mirjax_rate, 1), (kymatio_rate, 1)), out
  assert diff <= 1e-5, out  # the same coefficients


def test_kmeans_bench_figures_are_consistent_and_match_sklearn():
  out = _run("mirjax.bench.kmeans")
  mirjax_rate, devices = _figures(rf"mirjax\s+{NUM} points/s \({NUM} devices\)", out)
  assert devices == 8
  kmeans_rate, _ = _figures(rf"scikit-learn\s+{NUM} points/s \(KMeans, lloyd, {NUM} threads", out)
  (fit_rate,) = _figures(rf"KMeans\.fit\s+{NUM} points/s", out)
  (minibatch_rate,) = _figures(rf"minibatch\s+{NUM} points/s \(MiniBatchKMeans", out)
  ratio, minibatch_ratio, fit_ratio = _figures(
      rf"ratio\s+{NUM}x KMeans\s+{NUM}x MiniBatchKMeans\s+{NUM}x KMeans\.fit", out)
  # each ratio is mirjax's rate over the other's
  assert _agrees(ratio, 2, mirjax_rate / kmeans_rate, (mirjax_rate, 0), (kmeans_rate, 0)), out
  assert _agrees(minibatch_ratio, 2, mirjax_rate / minibatch_rate, (mirjax_rate, 0), (minibatch_rate, 0)), out
  assert _agrees(fit_ratio, 2, mirjax_rate / fit_rate, (mirjax_rate, 0), (fit_rate, 0)), out
  # the same first iteration from the same unit centroids: the same objective, to rounding
  m = re.search(rf"objective\s+{NUM} mirjax\s+{NUM} KMeans \(normalised\)\s+difference {NUM}", out)
  assert m, out
  ours, theirs, diff = (float(v) for v in m.groups())
  assert 0 < ours <= 1 and abs(ours - theirs) <= 1e-5 and diff <= 1e-5, out
  (rss,) = _figures(rf"peak host memory after the mirjax run: {NUM} MiB", out)
  assert 100 <= rss <= 64 * 1024  # JAX alone takes over 100 MiB


def test_wmf_bench_figures_are_consistent_and_reach_implicits_objective():
  pytest.importorskip("implicit")
  out = _run("mirjax.bench.wmf")
  lines = [l for l in out.splitlines() if re.match(r"\s+k =", l)]
  assert {l.split()[3] for l in lines} == {"cg", "cholesky"}, out
  for line in lines:
    ours, theirs, ratio, obj_ours, obj_theirs = _figures(
        rf"mirjax\s+{NUM} s\s+implicit\s+{NUM} s\s+ratio\s+{NUM}x\s+objective {NUM} mirjax, {NUM} implicit", line)
    # the ratio is implicit's seconds over mirjax's
    assert _agrees(ratio, 2, theirs / ours, (theirs, 3), (ours, 3)), line
    # one sweep from the same start: exact solves agree, CG is no worse than implicit's CG
    assert obj_ours <= obj_theirs * (1 + 1e-4), line
  assert re.search(r"8 devices; peak host memory \d+ MiB", out), out


def test_benchmarks_make_one_host_device_per_core_unless_told_otherwise():
  from mirjax.bench import one_host_device_per_core
  env = {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}
  one_host_device_per_core(env)
  assert env["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x --xla_force_host_platform_device_count={len(os.sched_getaffinity(0))}"
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
  one_host_device_per_core(env)
  assert env["XLA_FLAGS"] == "--xla_force_host_platform_device_count=8"
  env = {}
  one_host_device_per_core(env)
  assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count={len(os.sched_getaffinity(0))}"


def test_wavenet_bench_figures_are_consistent():
  out = _run("mirjax.bench.wavenet")
  lines = [l for l in out.splitlines() if re.match(r"\s+\d+ pieces:", l)]
  assert lines, out
  for line in lines:
    pieces = int(line.split()[0])
    cached, naive, ratio, n_naive, long, n_long, per_piece, batch = _figures(
        rf"cached {NUM} samples/s\s+naive {NUM} samples/s\s+ratio {NUM}x at {NUM} samples; cached {NUM} "
        rf"samples/s at {NUM} samples = {NUM}x real time per piece, {NUM}x for the batch", line)
    assert _agrees(ratio, 2, cached / naive, (cached, 1), (naive, 1)), line
    assert _agrees(per_piece, 4, long / pieces / 16000, (long, 1)), line
    assert _agrees(batch, 4, long / 16000, (long, 1)), line
    assert n_long > n_naive


def test_build_bench_figures_are_consistent_and_its_folder_is_reused(tmp_path):
  folder = tmp_path / "mtat"
  for how in ("written", "reused"):
    out = _run("mirjax.bench.build", f"--folder={folder}")
    (cores,) = _figures(r"mirjax\.bench\.build: (\d+) core\(s\)", out)
    assert cores == len(os.sched_getaffinity(0))
    assert f"in {folder} ({how})" in out, out
    clips, clip_s, rate = _figures(rf"\({how}\): {NUM} mono MP3s of {NUM} s at {NUM} Hz", out)
    assert (clips, rate) == (8, 16000)
    clips_built, hours = _figures(rf"clips {NUM}, audio {NUM} h", out)
    assert clips_built == clips and _agrees(hours, 4, clips * clip_s / 3600, (clip_s, 2)), out
    workers, many_s, many_rate = _figures(rf"{NUM} worker\(s\) \(default: one per core\):\s+{NUM} s\s+{NUM} clips/s", out)
    one_s, one_rate = _figures(rf"  1 worker:\s+{NUM} s\s+{NUM} clips/s", out)
    assert workers == cores
    for seconds, per_s in ((many_s, many_rate), (one_s, one_rate)):  # clips/s = clips / seconds
      assert _agrees(per_s, 2, clips / seconds, (seconds, 2)), out
    (ratio,) = _figures(rf"ratio 1 worker / {int(workers)} worker\(s\): {NUM}x", out)
    assert _agrees(ratio, 2, one_s / many_s, (one_s, 2), (many_s, 2)), out
    decode, share = _figures(rf"decoding alone \(1 process, nothing written\): {NUM} s = {NUM}% of the 1-worker", out)
    assert _agrees(share, 1, 100 * decode / one_s, (decode, 2), (one_s, 2)), out
  foreign = tmp_path / "real"
  foreign.mkdir()
  (foreign / "annotations_final.csv").write_text("clip_id\tmp3_path\n")
  p = subprocess.run([sys.executable, "-m", "mirjax.bench.build", "--quick", f"--folder={foreign}"], cwd=ROOT,
                     capture_output=True, text=True, timeout=300)
  assert p.returncode != 0 and "did not write" in p.stderr, p.stderr[-3000:]
  assert (foreign / "annotations_final.csv").read_text() == "clip_id\tmp3_path\n"  # left as it was


def test_all_benchmarks_run_one_after_another_and_are_summarised(tmp_path):
  p = subprocess.run([sys.executable, "-m", "mirjax.bench.all", "--quick", "--only=kmeans,accelerator",
                      f"--out={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                     env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert p.returncode == 0, p.stderr[-3000:]
  summary = (tmp_path / "summary.md").read_text()
  assert re.search(r"\| kmeans \| `python -m mirjax\.bench\.kmeans --quick` \| ok \| \d+ s \|", summary), summary
  assert "| accelerator |" in summary and "skipped: no GPU or TPU here" in summary, summary
  assert "mirjax.bench.kmeans" in (tmp_path / "kmeans.txt").read_text().splitlines()[0]
  assert "ratio" in p.stdout and not (tmp_path / "accelerator.txt").exists()
  bad = subprocess.run([sys.executable, "-m", "mirjax.bench.all", "--only=nope"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
  assert bad.returncode != 0 and "nope" in bad.stderr


def test_every_clip_of_the_build_bench_has_a_top_50_tag():
  import numpy as np  # pylint: disable=import-outside-toplevel
  from mirjax.bench import build  # pylint: disable=import-outside-toplevel
  tags = build.tag_matrix(1000)  # the 1,000-clip default: two clips had only rare tags
  top50 = np.argsort(-tags.sum(axis=0), kind="stable")[:50]
  assert tags[:, top50].any(axis=1).all()


def test_every_bench_imports_beside_every_other():
  # a test may import several benches into one process: their flags (each has --quick) must not collide
  code = ("import importlib, pkgutil, mirjax.bench as b\n"
          "done = []\n"
          "for m in sorted(pkgutil.iter_modules(b.__path__), key=lambda m: m.name):\n"
          "  try:\n"
          "    importlib.import_module('mirjax.bench.' + m.name)\n"
          "  except ModuleNotFoundError as e:\n"
          "    if e.name != 'torch': raise  # the PyTorch ports are optional\n"
          "    continue\n"
          "  done.append(m.name)\n"
          "print(len(done))")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert int(proc.stdout.split()[-1]) >= 13, proc.stdout  # all 15 but the two ports when PyTorch is missing
