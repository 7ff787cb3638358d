"""The modulation stage of ModNet / SincModNet: filters that resolve their bands, the FFT
correlation, band layout, and subsampling each band at a rate proportional to its width."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirjax.frontends import modulation

CLASSES = [modulation.ModNet, modulation.SincModNet]


def _responses(module, n_freqs=4001):
  variables = module.init(jax.random.key(0), jnp.zeros((1, 4000)))
  edges = module.apply(variables, method="initial_edges")
  resp = module.apply(variables, n_freqs, method="frequency_responses")["modulation"]
  return edges, np.asarray(resp["freqs_hz"]), np.asarray(resp["magnitude"], np.float64)


@pytest.mark.parametrize("cls", CLASSES)
def test_every_filter_peaks_in_its_band_and_none_duplicates_another(cls):
  """At initialisation each modulation filter's |H| peaks inside its own band (so the 0.5-4
  Hz range of beat and tempo is shared out, not left to copies of one low-pass), and the
  magnitude responses of any two filters have cosine similarity below 0.5."""
  edges, freqs, mag = _responses(cls())
  peaks = freqs[np.argmax(mag, axis=1)]
  assert np.all(peaks >= edges[:-1]) and np.all(peaks <= edges[1:]), (edges, peaks)
  assert np.sum((peaks > 0.5) & (peaks < 4.0)) >= 3
  unit = mag / np.linalg.norm(mag, axis=1, keepdims=True)
  similarity = unit @ unit.T - np.eye(len(mag))
  assert similarity.max() < 0.5, np.round(similarity, 2)


def test_filters_get_longer_as_their_bands_narrow():
  module = modulation.SincModNet()
  windows = module.modulation_windows()
  lengths = (windows > 0).sum(axis=1)
  bands = np.diff(module.initial_edges())
  assert lengths[0] == module.mod_kernel_size and np.all(np.diff(lengths) <= 0)
  seconds = lengths / module.env_rate
  np.testing.assert_allclose(seconds, module.mod_cycles / bands, atol=2.0 / module.env_rate)


def test_band_edges_constant_width_then_constant_q():
  edges = modulation.modulation_edges(0.5, 30.0, 8, 1.0)
  width, ratio = np.diff(edges), edges[1:] / edges[:-1]
  assert edges[0] == 0.5 and edges[-1] == pytest.approx(30.0)
  assert np.all(width >= 1.0 - 1e-9)
  knee = int(np.argmax(width > 1.0 + 1e-6))  # first band wider than the minimum
  np.testing.assert_allclose(width[:knee], 1.0, atol=1e-9)
  np.testing.assert_allclose(ratio[knee:-1], ratio[knee], rtol=1e-6)
  with pytest.raises(ValueError, match="do not fit"):
    modulation.modulation_edges(0.5, 4.0, 8, 1.0)


@pytest.mark.parametrize("time,taps,stride", [(749, 375, 2), (750, 374, 2), (100, 31, 1), (64, 64, 4),
                                               (513, 7, 3), (513, 8, 3), (301, 40, 5)])
def test_fft_correlation_equals_direct_convolution(time, taps, stride):
  """Values and gradients (to the signal and the kernels) of the folded FFT correlation
  equal a direct strided convolution's, for odd and even strides and tap counts."""
  rng = np.random.RandomState(time + taps)
  x = jnp.asarray(rng.randn(5, time), jnp.float32)
  k = jnp.asarray(rng.randn(3, taps), jnp.float32)  # not symmetric: the flip matters

  def direct(x, k):
    return jax.lax.conv_general_dilated(x[..., None], k.T[:, None, :], (stride,), "VALID",
                                        dimension_numbers=("NWC", "WIO", "NWC"), precision="highest")

  want, ours = direct(x, k), modulation.valid_correlation(x, k, stride)
  assert ours.shape == want.shape == (5, (time - taps) // stride + 1, 3)
  np.testing.assert_allclose(ours, want, atol=1e-4 * float(jnp.abs(want).max()))
  weights = jnp.asarray(rng.randn(*want.shape), jnp.float32)
  loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)) * weights)
  for g_ours, g_want in zip(jax.grad(loss(lambda x, k: modulation.valid_correlation(x, k, stride)), (0, 1))(x, k),
                            jax.grad(loss(direct), (0, 1))(x, k)):
    np.testing.assert_allclose(g_ours, g_want, atol=1e-4 * float(jnp.abs(g_want).max()))


@pytest.mark.parametrize("cls", CLASSES)
def test_a_sharded_batch_stays_sharded_through_the_modulation_stage(cls):
  """Every device transforms only its own clips (XLA's FFT would all-gather the batch):
  the compiled forward + backward pass gathers nothing, and gives the unsharded values."""
  from jax.sharding import AxisType, NamedSharding, PartitionSpec
  mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
  module = cls(n_bands=8, n_mod=4, mod_kernel_s=1.0, mod_fmin_hz=2.0, mod_fmax_hz=20.0)
  x = np.random.RandomState(0).randn(jax.device_count(), 4000).astype(np.float32)
  params = module.init(jax.random.key(0), x[:1])["params"]
  step = jax.jit(jax.value_and_grad(lambda p, a: jnp.mean(module.apply({"params": p}, a) ** 2)))
  sharded = jax.device_put(x, NamedSharding(mesh, PartitionSpec("data")))
  assert "all-gather" not in step.lower(params, sharded).compile().as_text()
  (value, grads), (want, want_grads) = step(params, sharded), step(params, x)
  np.testing.assert_allclose(value, want, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), grads, want_grads)


def test_fft_length_divides_into_the_kept_samples():
  for n, stride in ((749, 2), (750, 2), (100, 1), (513, 3), (301, 5)):
    m = modulation.decimation_size(n, stride)
    assert m >= n and m % (2 * stride) == 0 and modulation.fft_size(m // (2 * stride)) == m // (2 * stride)
  assert modulation.decimation_size(749, 2) == 768  # 4 * 192: the inverse FFT is 384 long


def test_fft_sizes_are_smooth_and_large_enough():
  for n in (1, 2, 7, 97, 749, 1025, 4097):
    m = modulation.fft_size(n)
    assert m >= n
    r = m
    for p in (2, 3, 5):
      while r % p == 0:
        r //= p
    assert r == 1
  assert modulation.fft_size(749) == 750


def test_subsampled_bands_hold_values_at_rates_proportional_to_bandwidth():
  full = modulation.SincModNet()
  sub = modulation.SincModNet(mod_subsample=2.0)
  audio = jnp.asarray(0.1 * np.random.RandomState(0).randn(2, 16000), jnp.float32)
  variables = full.init(jax.random.key(0), audio)
  y, ys = full.apply(variables, audio), sub.apply(variables, audio)
  assert y.shape == ys.shape
  periods = sub.hold_periods()
  frame_rate = full.sample_rate / full.hop
  bands = np.diff(full.initial_edges())
  expected = np.maximum(1, np.floor(frame_rate / (2.0 * bands))).astype(int)
  assert periods == tuple(expected) and periods[0] > periods[-1] >= 1
  for k, m in enumerate(periods):
    kept = np.asarray(y[:, ::m, :, k])
    np.testing.assert_array_equal(np.asarray(ys[:, ::m, :, k]), kept)
    held = np.repeat(kept, m, axis=1)[:, :y.shape[1]]
    np.testing.assert_array_equal(np.asarray(ys[..., k]), held)
  assert full.hold_periods() == (1,) * full.n_mod


def test_decompose_returns_envelopes_and_the_frontend_output():
  module = modulation.ModNet()
  audio = jnp.asarray(0.1 * np.random.RandomState(1).randn(1, 8000), jnp.float32)
  variables = module.init(jax.random.key(0), audio)
  env, dec = module.apply(variables, audio, method="decompose")
  assert env.shape == (1, 8000 // 256 + 1, module.n_bands)
  np.testing.assert_array_equal(np.asarray(dec), np.asarray(module.apply(variables, audio)))
  centres = np.asarray(module.apply(variables, method="band_centres_hz"))
  # ModNet's bands are mel triangles (Slaney, norm=None) peaking at librosa's mel frequencies
  import librosa
  want = librosa.mel_frequencies(n_mels=module.n_bands + 2, fmin=module.fmin, fmax=module.fmax)[1:-1]
  np.testing.assert_allclose(centres, want, atol=module.sample_rate / 2 / 1023 + 1e-3)
