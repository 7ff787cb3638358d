"""Dieleman & Schrauwen (2014): the 1-D back-end, feature pooling, the sorted-filter plot,
the configs of the paper's grid and the override sets the comparison job applies."""
import csv
import importlib.util
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np
import pytest

from mirjax import config as base, frontends, models, overrides
from mirjax.frontends import plot, raw
from mirjax.jobs import compare
from mirjax.models.dieleman import Dieleman1D
from mirjax.models.short_chunk_cnn import ShortChunkCNN
from mirjax.system import build_system

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000


def _config(name, arg=None):
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, f"configs/{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


class _Info:
  name, sample_rate, class_names, tag_names = "toy", SR, (), tuple(f"t{i}" for i in range(5))


def _features(shape, seed=0):
  return jnp.asarray(np.random.RandomState(seed).randn(*shape), jnp.float32)


def _random_variables(module, x, seed=0):
  """Variables of `module`'s shapes drawn in NumPy (a jitted init compiles for seconds);
  BatchNorm variances positive."""
  rng = np.random.RandomState(seed)
  draw = lambda path, s: jnp.asarray(
      1.0 + rng.rand(*s.shape) if path[-1].key == "var" else 0.2 * rng.randn(*s.shape), jnp.float32)
  return jax.tree_util.tree_map_with_path(draw, jax.eval_shape(module.init, jax.random.key(0), x))


@pytest.mark.parametrize("shape,flat", [
    ((2, 188, 128), 11 * 32),  # 3 s, stride 256: 188 -> 47 -> 11 frames
    ((2, 47, 128), 2 * 32),  # 3 s, stride 1024: SAME convolutions keep 2 frames
    ((2, 63, 20, 3), 3 * 32),  # a 4-D front-end: 20 features x 3 channels = 60 channels
])
def test_backend_shapes(shape, flat):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  net = Dieleman1D(n_outputs=7)
  variables = jax.eval_shape(net.init, jax.random.key(0), x)
  assert jax.eval_shape(net.apply, variables, x).shape == (2, 7)
  in_channels = shape[2] * (shape[3] if len(shape) == 4 else 1)
  assert variables["params"]["conv0"]["kernel"].shape == (8, in_channels, 32)  # 1-D, over time
  assert variables["params"]["dense"]["kernel"].shape == (flat, 100)  # the flattened excerpt
  embedding = Dieleman1D(n_outputs=None)
  assert jax.eval_shape(embedding.apply, variables, x).shape == (2, 100)  # the same weights, no head


def test_backend_refuses_too_few_frames():
  with pytest.raises(ValueError, match="crop_seconds"):
    jax.eval_shape(Dieleman1D(n_outputs=3).init, jax.random.key(0), _features((1, 12, 8)))  # 12 -> 3 < 4


def _permute_features(variables, perm):
  """The same network with its input features reordered by `perm`."""
  params = jax.tree.map(lambda a: a, variables["params"])
  params["conv0"]["kernel"] = params["conv0"]["kernel"][:, perm, :]
  for k in ("scale", "bias"):
    params["input_norm"][k] = params["input_norm"][k][perm]
  stats = {k: v[perm] for k, v in variables["batch_stats"]["input_norm"].items()}
  return {"params": params, "batch_stats": {"input_norm": stats}}


def test_first_conv_treats_features_as_unordered_channels():
  """Permuting the input features and, alike, the first conv's input rows (and the per-feature
  normalisation) changes nothing: no weight is tied to a feature's neighbours."""
  x = _features((3, 64, 16))
  net = Dieleman1D(n_outputs=5)
  # non-trivial per-feature statistics and affine, so their permutation matters too
  variables = _random_variables(net, x, 1)
  perm = np.random.RandomState(3).permutation(16)
  apply = jax.jit(net.apply)
  y = apply(variables, x)
  np.testing.assert_allclose(apply(_permute_features(variables, perm), x[..., perm]), y,
                             rtol=1e-5, atol=1e-5)
  assert not np.allclose(apply(variables, x[..., perm]), y, atol=1e-3)  # the order is used
  # The 2-D CNN's first conv mixes each feature with its neighbours in the feature order:
  # on reordered features it is not the reordering of its output on the original ones.
  cnn = ShortChunkCNN(n_outputs=5, channels=(4, 4))
  cvars = _random_variables(cnn, x, 1)
  cvars["params"]["input_norm"] = {"scale": jnp.ones((16, 1)), "bias": jnp.zeros((16, 1))}
  cvars["batch_stats"]["input_norm"] = {"mean": jnp.zeros((16, 1)), "var": jnp.ones((16, 1))}
  assert cvars["params"]["conv0"]["kernel"].shape == (3, 3, 1, 4)  # 3 neighbouring features
  conv0 = jax.jit(lambda v, x: cnn.apply(v, x, capture_intermediates=True, mutable=["intermediates"])[1][
      "intermediates"]["conv0"]["__call__"][0])
  mixed, reordered = conv0(cvars, x[..., perm]), conv0(cvars, x)[:, :, perm, :]
  assert float(jnp.abs(mixed - reordered).mean()) > 0.1 * float(jnp.abs(reordered).mean())


def _numpy_strided_conv(audio, kernel, hop):
  """y[b, t, k] = sum_n h_k[n] x[t * hop + n - K // 2], zeros outside the signal."""
  taps = kernel.shape[0]
  frames = math.ceil(audio.shape[1] / hop)
  padded = np.zeros((audio.shape[0], frames * hop + audio.shape[1] + taps), np.float64)
  padded[:, taps // 2:taps // 2 + audio.shape[1]] = audio
  windows = np.stack([padded[:, t * hop:t * hop + taps] for t in range(frames)], axis=1)
  return windows @ kernel[:, 0, :].astype(np.float64)


@pytest.mark.parametrize("compression", ["none", "log1p_power", "log1p"])
def test_feature_pooling_is_the_l2_norm_of_each_group(compression):
  module = raw.StridedConv(n_filters=4, feature_pool=3, kernel_size=64, hop=32, compression=compression)
  audio = 0.1 * np.random.RandomState(0).randn(2, 1000).astype(np.float32)
  variables = module.init(jax.random.key(0), audio)
  kernel = np.asarray(variables["params"]["kernel"])
  assert kernel.shape == (64, 1, 12)  # n_filters x feature_pool filters are learned
  y = _numpy_strided_conv(audio, kernel, 32)
  norm = np.sqrt(np.sum(y.reshape(2, -1, 4, 3) ** 2, axis=-1))  # groups of 3 consecutive filters
  want = {"none": norm, "log1p_power": np.log1p(1e4 * norm ** 2), "log1p": np.log1p(1e4 * norm)}
  got = module.apply(variables, audio)
  assert got.shape == (2, math.ceil(1000 / 32), 4)
  np.testing.assert_allclose(got, want[compression], rtol=2e-4, atol=1e-5)
  # every underlying filter has a response
  resp = module.apply(variables, 100, method="frequency_responses")["filterbank"]
  assert resp["magnitude"].shape == (12, 100)
  # silence (all-zero frames) keeps the gradient finite where the norm is 0
  grads = jax.grad(lambda p: jnp.sum(module.apply({"params": p}, jnp.zeros((1, 256)))))(variables["params"])
  assert bool(jnp.all(jnp.isfinite(grads["kernel"])))


def test_feature_pool_one_is_the_plain_strided_conv():
  audio = 0.1 * np.random.RandomState(1).randn(1, 700).astype(np.float32)
  module = raw.StridedConv(n_filters=6, kernel_size=32, hop=16)
  variables = module.init(jax.random.key(0), audio)
  y = _numpy_strided_conv(audio, np.asarray(variables["params"]["kernel"]), 16)
  np.testing.assert_allclose(module.apply(variables, audio), np.log1p(1e4 * y ** 2), rtol=2e-4, atol=1e-5)
  assert frontends.default_config("rawconv").feature_pool == 1


@pytest.mark.parametrize("name,length,stride", [
    ("rawconv", 1024, 1024), ("rawconv", 1024, 512), ("rawconv", 512, 256), ("logmel", 1024, 1024),
    ("logmel", 1024, 512), ("logmel", 256, 256)])
def test_grid_front_ends_keep_the_frame_contract(name, length, stride):
  """frames = ceil(time / hop), also with windows longer than the stride; raw frame t is
  centred on sample t * stride."""
  module = frontends.build(models.dieleman_config(name, length, stride).frontend)
  variables = _random_variables(module, jnp.zeros((1, 4000)))
  apply = jax.jit(module.apply)
  for time in (1, stride + 1, 3 * stride, 48000):
    out = apply(variables, _features((2, time)))
    assert out.shape == (2, math.ceil(time / stride), 128) and bool(jnp.all(jnp.isfinite(out)))
  if name == "rawconv":  # a unit impulse at the centre tap reads sample t * stride
    delta = np.zeros((length, 1, 128), np.float32)
    delta[length // 2] = 1.0
    probe = raw.StridedConv(n_filters=128, kernel_size=length, hop=stride, compression="none")
    audio = np.random.RandomState(0).randn(1, 5 * stride).astype(np.float32)
    out = probe.apply({"params": {"kernel": jnp.asarray(delta)}}, audio)
    np.testing.assert_allclose(out[0, :, 0], audio[0, ::stride], rtol=1e-6)


def test_sorted_filters_are_ordered_by_peak_frequency(tmp_path):
  freqs = np.linspace(0.0, 8000.0, 101)
  peaks = np.array([40, 5, 90, 5, 60])  # filters 1 and 3 tie
  magnitude = np.exp(-0.5 * ((np.arange(101)[None] - peaks[:, None]) / 3.0) ** 2)
  order, peak_hz = plot.peak_frequency_order(freqs, magnitude)
  assert list(order) == [1, 3, 0, 4, 2]  # lowest peak first, ties in filter order
  np.testing.assert_allclose(peak_hz, freqs[peaks])
  # learned kernels: cosines at shuffled frequencies come back sorted
  hz = np.array([3000.0, 500.0, 6000.0, 1500.0])
  t = np.arange(256) / SR
  kernel = np.cos(2 * np.pi * hz[None, :] * t[:, None])[:, None, :] * np.hanning(256)[:, None, None]
  module = raw.StridedConv(n_filters=4)
  resp = module.apply({"params": {"kernel": jnp.asarray(kernel, jnp.float32)}}, 801,
                      method="frequency_responses")
  resp = jax.device_get(resp)
  order, peak_hz = plot.peak_frequency_order(resp["filterbank"]["freqs_hz"], resp["filterbank"]["magnitude"])
  np.testing.assert_allclose(peak_hz[order], np.sort(hz), atol=10.0)
  backend = matplotlib.get_backend()
  path = plot.plot_sorted_filters(resp, str(tmp_path / "sorted.png"), title="t")
  assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
  assert matplotlib.get_backend() == backend  # the user's backend is left alone


def test_rawcnn_variants():
  paper = _config("rawcnn")
  assert paper.model.backend.name == "dieleman1d" and paper.model.frontend.name == "rawconv"
  assert (paper.model.frontend.kernel_size, paper.model.frontend.hop) == (256, 256)
  pooled = _config("rawcnn", "smoke,featpool").model.frontend
  assert (pooled.n_filters, pooled.feature_pool) == (128, 4)
  mel = _config("rawcnn", "mel,1024_512").model.frontend
  assert (mel.name, mel.n_fft, mel.hop, mel.n_mels) == ("logmel", 1024, 512, 128)
  # the short-chunk model this config trained before is the same config as before
  old = models.default_config("rawconv", size="won2020").to_dict()
  assert _config("rawcnn", "mtat,shortchunk").model.to_dict() == old
  assert _config("rawcnn", "mtat").data.name == "mtat"
  with pytest.raises(ValueError):
    _config("rawcnn", "smoke,mtat")


def test_every_grid_point_builds():
  c = _config("rawgrid", "compare")
  assert len(c.compare.variants) == 10 and c.job == "compare"
  for variant in c.compare.variants:
    run = compare.variant_config(c, variant, seed=1)
    assert run.job == "train" and run.seed == 1 and "compare" not in run
    inp, length, stride = variant.split("_")
    fe = run.model.frontend
    assert fe.hop == int(stride) and (fe.kernel_size if inp == "raw" else fe.n_fft) == int(length)
    system = build_system(run, _Info)  # traces init on a 3 s crop (eval_shape)
    params = system.abstract_state.params
    frames = math.ceil(system.crop / int(stride))
    for _ in range(2):
      frames //= 4  # a SAME conv keeps the frames, the pooling by 4 drops a tail
    assert params["backend"]["dense"]["kernel"].shape == (frames * 32, 100)
    if inp == "raw":
      assert params["frontend"]["kernel"].shape == (int(length), 1, 128)


def test_override_sets_are_validated():
  c = base.from_file("rawcnn", "smoke")
  c.model = models.dieleman_config("rawconv")
  c.lock()
  overrides.apply(c, overrides.nest({"model.frontend.hop": 512, "train.num_steps": 3}))
  assert (c.model.frontend.hop, c.train.num_steps) == (512, 3)
  with pytest.raises(ValueError, match=r"'bad': the config has no field 'model.frontend.hopp'.*'hop'"):
    overrides.apply(c, overrides.nest({"model.frontend.hopp": 3}), "bad")
  with pytest.raises(ValueError, match="no field 'modle'"):
    overrides.apply(c, overrides.nest({"modle.frontend.hop": 3}))
  with pytest.raises(ValueError, match="config.model.frontend is a section"):
    overrides.apply(c, overrides.nest({"model.frontend": 3}))
  with pytest.raises(ValueError, match="config.train.num_steps"):
    overrides.apply(c, overrides.nest({"train.num_steps": "many"}))
  # a section of another kind replaces its target whole
  mel = models.dieleman_config("logmel", 512, 256).frontend
  overrides.apply(c, ml_collections.ConfigDict({"model": {"frontend": mel}}))
  assert c.model.frontend.to_dict() == mel.to_dict() and "kernel_size" not in c.model.frontend
  # another name among the same fields is set leaf by leaf: the section's other fields stay
  c.optim.combine.window = 7
  overrides.apply(c, overrides.nest({"optim.combine.name": "gradient_blending"}))
  assert (c.optim.combine.name, c.optim.combine.window) == ("gradient_blending", 7)
  # the comparison names a variant its overrides lack
  g = _config("rawgrid", "compare,smoke")
  g.compare.variants = ("raw_1024_1024", "raw_2048_1024")
  with pytest.raises(ValueError, match="'raw_2048_1024', which compare.overrides lacks"):
    compare.variant_config(g, "raw_2048_1024", 0)


def test_smoke_grid_comparison(tmp_path, data_dir):
  """The grid command end to end (two points, one seed): a table per point and input."""
  env = dict(os.environ, MIRJAX_DATA_DIR=data_dir, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  p = subprocess.run([sys.executable, "-m", "mirjax.main", "--config=configs/rawgrid.py:compare,smoke",
                      f"--workdir={tmp_path}", "--config.train.num_steps=4"], cwd=ROOT, env=env,
                     capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-4000:]
  table = open(tmp_path / "comparison.md").read()
  assert "test roc_auc (mean ± std)" in table and "test pr_auc (mean ± std)" in table
  rows = list(csv.DictReader(open(tmp_path / "comparison.csv")))
  assert [r["variant"] for r in rows] == ["raw_1024_1024", "mel_1024_1024"]
  for r in rows:
    run = tmp_path / r["variant"] / "seed0"
    results = json.load(open(run / "results.json"))
    assert float(r["roc_auc"]) == pytest.approx(results["test/roc_auc"])
    assert f"| {r['variant']} | {float(r['roc_auc']):.4f} ± " in table
    assert (run / "filters_sorted.png").exists() == (r["variant"] == "raw_1024_1024")
