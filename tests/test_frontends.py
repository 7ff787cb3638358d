"""Front-ends (contract, gradients, filter responses, plots) and the Tagger back-end."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirjax import frontends, models
from mirjax.frontends import modulation, plot, raw, sinc
from mirjax.models.short_chunk_cnn import max_pool_2x2

NAMES = sorted(frontends.FRONTENDS)
LEARNABLE = ["rawconv", "sincnet", "modnet", "sincmodnet"]
SR = 16000


def _audio(batch, time, seed=0):
  return jnp.asarray(0.1 * np.random.RandomState(seed).randn(batch, time), jnp.float32)


def _init(module, audio):
  return module.init(jax.random.key(0), audio)


@pytest.mark.parametrize("name", NAMES)
def test_shape_contract(name):
  """frames == ceil(time / hop) for awkward lengths and two hops; channels-last output."""
  for hop in (256, 128):
    cfg = frontends.default_config(name)
    cfg.hop = hop
    module = frontends.build(cfg)
    init, apply = module.init, module.apply
    # compiled once per length: faster than op by op, except for the constant-Q transform,
    # whose program takes longer to compile than to run op by op
    if name != "cqt":
      init, apply = jax.jit(init), jax.jit(apply)
    variables = init(jax.random.key(0), _audio(1, 1000))
    for time in (1, hop - 1, hop, hop + 1, 3001):
      out = apply(variables, _audio(2, time))
      assert out.shape[:2] == (2, math.ceil(time / hop)), (name, hop, time, out.shape)
      assert out.ndim in (3, 4)
      assert bool(jnp.all(jnp.isfinite(out)))
    assert module.hop == hop


@pytest.mark.parametrize("name", LEARNABLE)
def test_gradients_reach_filter_parameters(name):
  module = frontends.build(frontends.default_config(name))
  audio = _audio(2, 4000)
  params = jax.jit(module.init)(jax.random.key(0), audio)["params"]
  loss = lambda p: jnp.mean(module.apply({"params": p}, audio) ** 2)
  grads = jax.jit(jax.grad(loss))(params)  # compiled: faster than op by op
  assert jax.tree.leaves(grads)
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert bool(jnp.all(jnp.isfinite(g))), path
    assert float(jnp.max(jnp.abs(g))) > 0.0, path


@pytest.mark.parametrize("name", NAMES)
def test_frequency_response_shapes(name):
  module = frontends.build(frontends.default_config(name))
  variables = _init(module, _audio(1, 1000))
  resp = module.apply(variables, 300, method="frequency_responses")
  expected = {"filterbank"} | ({"modulation"} if "mod" in name else set())
  assert set(resp) == expected
  n_features = module.apply(variables, _audio(1, 1000)).shape[2]
  assert resp["filterbank"]["freqs_hz"].shape == (300,)
  n_filters = module.n_mels if name == "mfcc" else n_features  # MFCC: a DCT follows the bank
  assert resp["filterbank"]["magnitude"].shape == (n_filters, 300)
  assert float(resp["filterbank"]["freqs_hz"][-1]) == pytest.approx(SR / 2)
  if "modulation" in resp:
    assert resp["modulation"]["magnitude"].shape == (module.n_mod, 300)
    assert bool(jnp.all(jnp.isfinite(resp["modulation"]["magnitude"])))


def _numpy_sinc_reference(low_hz, band_hz, kernel_size, sr):
  """Ravanelli & Bengio eq. 4-6 written out: g[n] = 2 f2 sinc(2 pi f2 n) - 2 f1 sinc(...)."""
  n = np.arange(kernel_size) - (kernel_size - 1) / 2.0
  out = []
  for lo, bw in zip(low_hz, band_hz):
    f1, f2 = lo / sr, (lo + bw) / sr
    terms = []
    for f in (f2, f1):
      x = 2.0 * np.pi * f * n
      safe = np.where(n == 0, 1.0, x)
      terms.append(2.0 * f * np.where(n == 0, 1.0, np.sin(safe) / safe))
    out.append((terms[0] - terms[1]) * (0.54 - 0.46 * np.cos(2 * np.pi * np.arange(kernel_size)
                                                              / (kernel_size - 1))))
  return np.stack(out)


def test_sinc_filterbank_matches_numpy_reference():
  low, band = np.array([60.0, 440.0, 3000.0, 7000.0]), np.array([50.0, 200.0, 1500.0, 990.0])
  got = np.asarray(sinc.sinc_filterbank(low, band, 251, SR))
  np.testing.assert_allclose(got, _numpy_sinc_reference(low, band, 251, SR), atol=2e-6)
  in_phase, _ = sinc.analytic_sinc_filterbank(low, band, 251, SR)
  np.testing.assert_allclose(np.asarray(in_phase), got, atol=2e-6)


def test_sinc_response_peaks_inside_band():
  low, band = jnp.array([400.0, 2000.0, 5000.0]), jnp.array([300.0, 1000.0, 2500.0])
  kernels = sinc.sinc_filterbank(low, band, 251, SR)
  freqs, mag = raw.fir_magnitude_response(kernels, 4001, SR)
  peaks = np.asarray(freqs)[np.argmax(np.asarray(mag), axis=1)]
  assert np.all(peaks >= np.asarray(low)) and np.all(peaks <= np.asarray(low + band))
  # The module's initial (mel-spaced) filters too.
  module = sinc.SincNet()
  variables = _init(module, _audio(1, 512))
  low, band = module.apply(variables, method="bands")
  resp = module.apply(variables, 4001, method="frequency_responses")["filterbank"]
  peaks = np.asarray(resp["freqs_hz"])[np.argmax(np.asarray(resp["magnitude"]), axis=1)]
  assert np.all(peaks >= np.asarray(low)) and np.all(peaks <= np.asarray(low + band))


def test_sinc_envelope_of_a_sinusoid_is_its_amplitude():
  """The analytic (I, Q) pair gives a flat envelope equal to an in-band tone's amplitude."""
  t = np.arange(8000) / SR
  audio = jnp.asarray(0.3 * np.sin(2 * np.pi * 1000.0 * t)[None], jnp.float32)
  env = sinc.sinc_envelopes(audio, jnp.array([700.0]), jnp.array([600.0]), kernel_size=251,
                            sample_rate=SR, stride=16, n_out=500)
  np.testing.assert_allclose(np.asarray(env[0, 50:-50, 0]), 0.3, rtol=0.02)


def test_plot_writes_png(tmp_path):
  module = modulation.SincModNet()
  variables = _init(module, _audio(1, 1000))
  resp = module.apply(variables, 128, method="frequency_responses")
  path = plot.plot_frequency_responses(resp, str(tmp_path / "resp.png"), title="sincmodnet")
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_max_pool_matches_flax_and_handles_small_sizes():
  x = jnp.asarray(np.random.RandomState(0).randn(2, 7, 5, 3), jnp.float32)
  np.testing.assert_array_equal(max_pool_2x2(x), nn.max_pool(x, (2, 2), (2, 2)))
  assert max_pool_2x2(jnp.ones((2, 1, 5, 3))).shape == (2, 1, 2, 3)
  assert max_pool_2x2(jnp.ones((2, 1, 1, 3))).shape == (2, 1, 1, 3)


@pytest.mark.parametrize("shape", [(2, 7, 5, 3), (2, 1, 5, 3), (3, 8, 6, 4)])
def test_max_pool_gradient_matches_flax_and_goes_to_one_arg_max(shape):
  """Without ties the gradient is flax's (reduce-window) one; with ties each window passes
  its cotangent to exactly one element (the first maximum), so nothing is lost or doubled."""
  x = jnp.asarray(np.random.RandomState(1).randn(*shape), jnp.float32)
  g = jnp.asarray(np.random.RandomState(2).randn(*max_pool_2x2(x).shape), jnp.float32)
  window = (2 if shape[1] >= 2 else 1, 2)
  ours = jax.jit(jax.vjp(max_pool_2x2, x)[1])(g)[0]
  ref = jax.vjp(lambda a: nn.max_pool(a, window, window), x)[1](g)[0]
  np.testing.assert_array_equal(ours, ref)
  ties = jnp.zeros(shape, jnp.float32)
  grad = jax.jit(jax.vjp(max_pool_2x2, ties)[1])(g)[0]
  assert int(jnp.sum(grad != 0)) == g.size and float(jnp.sum(grad)) == pytest.approx(float(jnp.sum(g)), rel=1e-5)


@pytest.mark.parametrize("name", ["sincmodnet", "logmel"])  # 4-D and 3-D features
def test_tagger_logits_and_batch_stats(name):
  model = models.build(models.default_config(name), n_outputs=7)
  audio = _audio(4, 3000)
  variables = jax.jit(model.init)({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                                  audio)
  train = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"],
                                           rngs={"dropout": jax.random.key(2)}))
  out, updates = train(variables, audio)
  assert set(out) == {"tagging"} and out["tagging"].shape == (4, 7)
  assert bool(jnp.all(jnp.isfinite(out["tagging"])))
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"],
                         updates["batch_stats"])
  assert all(jax.tree.leaves(changed))
  evaluate = jax.jit(model.apply)
  eval_a = evaluate(variables, audio)["tagging"]
  eval_b = evaluate(variables, audio)["tagging"]
  np.testing.assert_array_equal(eval_a, eval_b)
  resp = model.apply(variables, 64, method="frequency_responses")
  assert resp["filterbank"]["magnitude"].shape[1] == 64


def test_registries_reject_unknown_names_and_fields():
  with pytest.raises(ValueError, match="sincmodnet"):
    frontends.default_config("leaf")
  with pytest.raises(ValueError, match="valid"):
    frontends.build({"name": "sincnet", "n_mels": 64})
  cfg = models.default_config("sincnet")
  with pytest.raises(ValueError, match="channels"):
    models._build_backend({"name": "short_chunk_cnn", "width": 3}, 5)
  with pytest.raises(AttributeError):
    cfg.frontend.not_a_field = 1  # locked config
