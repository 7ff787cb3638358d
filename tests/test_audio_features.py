"""Worker targets in mirjax.audio.features against librosa 0.11, per clip and batched.

Tolerances: RMS to 1e-6; spectral contrast to 5e-3 dB (1e-4 relative when linear); onset
strength and tempogram to 1e-5 of their peaks; YIN f0 to 1e-3 Hz on a sung-like melody with
rests (float32 autocorrelations; measured 1.3e-4 Hz).
"""
import jax
import numpy as np
import librosa
import pytest

from mirjax.audio import features

SR = 16000


def melody(seconds=3.0, seed=0):
  """Harmonic tones at 220, 330 and 147 Hz, gated on and off, with a little noise."""
  t = np.arange(int(SR * seconds)) / SR
  f0 = np.where(t < seconds / 3, 220.0, np.where(t < 2 * seconds / 3, 330.0, 147.0))
  phase = 2 * np.pi * np.cumsum(f0) / SR
  x = sum(0.3 / h * np.sin(h * phase) for h in range(1, 5)) * (np.sin(2 * np.pi * 2 * t) > -0.5)
  return (x + 0.01 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


def test_rms():
  x = melody()
  np.testing.assert_allclose(features.rms(x), librosa.feature.rms(y=x)[0], atol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(), dict(n_bands=4, fmin=300.0), dict(n_fft=1024, hop_length=256)])
def test_spectral_contrast(kwargs):
  x = melody()
  ref = librosa.feature.spectral_contrast(y=x, sr=SR, **kwargs).T
  np.testing.assert_allclose(features.spectral_contrast(x, sr=SR, **kwargs), ref, atol=5e-3)
  lin = librosa.feature.spectral_contrast(y=x, sr=SR, linear=True, **kwargs).T
  np.testing.assert_allclose(features.spectral_contrast(x, sr=SR, linear=True, **kwargs), lin,
                             rtol=1e-4, atol=1e-4 * np.abs(lin).max())


def test_onset_strength_and_tempogram():
  x = melody()
  ref = librosa.onset.onset_strength(y=x, sr=SR)
  np.testing.assert_allclose(features.onset_strength(x, sr=SR), ref, atol=1e-5 * ref.max())
  for win in (384, 128):
    ref = librosa.feature.tempogram(y=x, sr=SR, win_length=win).T
    got = np.asarray(features.tempogram(x, sr=SR, win_length=win))
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-5)


@pytest.mark.parametrize("frame_length,hop", [(2048, None), (1024, 256)])
def test_yin(frame_length, hop):
  x = melody()
  ref = librosa.yin(x, fmin=60, fmax=800, sr=SR, frame_length=frame_length, hop_length=hop)
  f0, aperiodicity = features.yin(x, fmin=60, fmax=800, sr=SR, frame_length=frame_length, hop_length=hop)
  np.testing.assert_allclose(f0, ref, atol=1e-3)
  aperiodicity = np.asarray(aperiodicity)
  assert np.all((aperiodicity >= 0) & (aperiodicity < 1.5))
  voiced = np.abs(np.asarray(f0) - np.array([220, 330, 147])[:, None]).min(0) < 2
  assert aperiodicity[voiced].mean() < 0.1 < aperiodicity[~voiced].mean()


@pytest.mark.parametrize("fmin,frame_length,sr", [
    (15.6, 1024, SR), (SR / 1023, 1024, SR), (30.0, 1024, 32000),
    (60.0, 1024, 61380)])  # the last: the prosody worker's fmin at the lowest rate it refuses
def test_yin_refuses_an_fmin_whose_period_does_not_fit_a_frame(fmin, frame_length, sr):
  # librosa's condition: sr / fmin >= frame_length - 1; mirjax used to narrow the search silently.
  x = melody(0.25)
  mirjax_yin = lambda **kw: jax.eval_shape(lambda a: features.yin(a, **kw), x)  # checks, no compute
  with pytest.raises(librosa.ParameterError, match="too small"):
    librosa.yin(x, fmin=fmin, fmax=800, sr=sr, frame_length=frame_length)
  with pytest.raises(ValueError, match=rf"fmin={fmin} Hz is too low for frame_length={frame_length} "
                                       rf"at sr={sr}: raise fmin above .* or frame_length to at least \d+"):
    mirjax_yin(fmin=fmin, fmax=800, sr=sr, frame_length=frame_length)
  # What the message proposes works, in librosa and here.
  for fix in (dict(fmin=sr / (frame_length - 1) * 1.001), dict(frame_length=int(np.floor(sr / fmin)) + 2)):
    kw = dict(dict(fmin=fmin, frame_length=frame_length), **fix)
    with pytest.warns(UserWarning, match="less than two periods"):  # librosa's advice, not an error
      librosa.yin(x, fmax=800, sr=sr, **kw)
    mirjax_yin(fmax=800, sr=sr, **kw)
  for bad in (dict(fmin=0.0), dict(fmin=900.0), dict(fmax=sr / 2 + 1)):  # 0 < fmin < fmax <= sr / 2
    kw = dict(dict(fmin=100.0, fmax=800.0), **bad)
    with pytest.raises(librosa.ParameterError):
      librosa.yin(x, sr=sr, frame_length=frame_length, **kw)
    with pytest.raises(ValueError, match="0 < fmin < fmax <= sr / 2"):
      mirjax_yin(sr=sr, frame_length=frame_length, **kw)


def test_batched_and_jitted_equal_per_clip():
  x = np.stack([melody(seed=s) * (s + 1) for s in range(3)])
  for fn in (lambda a: features.tempogram(a, sr=SR), lambda a: features.yin(a, fmin=60, fmax=800, sr=SR)[0],
             lambda a: features.spectral_contrast(a, sr=SR)):
    batch = np.asarray(jax.jit(fn)(x))
    for i in range(3):
      np.testing.assert_allclose(batch[i], np.asarray(fn(x[i])), rtol=1e-4, atol=1e-4)


def test_spectral_contrast_selects_its_quantiles_without_sorting_the_bands():
  """The peak and valley need only a band's k strongest and weakest bins: a partial
  selection (top_k), not a sort of every band of every frame (7x slower on a CPU)."""
  import re  # pylint: disable=import-outside-toplevel
  jaxpr = str(jax.make_jaxpr(lambda a: features.spectral_contrast(a, sr=16000))(np.zeros((2, 16000), np.float32)))
  primitives = set(re.findall(r"= (\w+)\[", jaxpr)) | set(re.findall(r"= (\w+) ", jaxpr))
  assert "top_k" in primitives and "sort" not in primitives
  # the bands are slices of the spectrum, not gathers of its bins (1.4x faster on a CPU)
  assert "gather" not in primitives


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 8])
def test_mean_of_the_largest_counts_repeated_values(k):
  """The peak's selection against a full sort, on values with many ties (silence, clipping)."""
  x = np.random.default_rng(k).integers(0, 4, size=(6, 5, 40)).astype(np.float32)
  x[0] = 0.0  # all equal
  want = np.sort(x, axis=-1)[..., ::-1][..., :k].mean(axis=-1)
  np.testing.assert_allclose(jax.jit(lambda a: features._mean_of_largest(a, k))(x), want, rtol=1e-6)
