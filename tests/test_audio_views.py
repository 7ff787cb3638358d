"""The multi-view features in mirjax.audio: chroma and constant-Q against librosa 0.11,
gammatone against a NumPy transcription of the published formulas.

Tolerances: chroma filter banks equal to 1e-6 and chromagrams to 1e-5 (float32);
constant-Q: the top octave (which librosa computes at the full rate too, unless it can
resample first) to 1e-4 of the peak without sparsification, 5e-3 with librosa's default; lower octaves, which librosa computes on a resampled signal with kernels sampled at
the lower rate, within 2.5 % of the peak and a complex correlation above 0.999 per bin
(measured: 0.7 % to 1.9 %, correlation >= 0.9992), on frames whose kernels lie inside the
signal; gammatone filter bank to 1e-6 of the reference, spectrogram to 1e-5 relative.
"""
import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from mirjax import audio
from mirjax.audio import chroma, gammatone
from mirjax.audio.cqt import C1_HZ

from test_audio import chirp_noise


@pytest.mark.parametrize("kwargs", [
    dict(sr=22050, n_fft=2048), dict(sr=16000, n_fft=512),
    dict(sr=16000, n_fft=4096, n_chroma=24, tuning=0.3, base_c=False),
    dict(sr=44100, n_fft=1024, octwidth=None, norm=None, ctroct=4.0)])
def test_chroma_filterbank_matches_librosa(kwargs):
  np.testing.assert_allclose(chroma.chroma_filterbank(**kwargs), librosa.filters.chroma(**kwargs),
                             atol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(), dict(n_fft=1024, hop_length=256), dict(norm=2.0),
                                    dict(n_fft=512, hop_length=128, n_chroma=24)])
def test_chroma_stft_matches_librosa(kwargs):
  x = chirp_noise(16000, 2.0, f0=80.0, f1=3000.0)
  ref = librosa.feature.chroma_stft(y=x, sr=16000, tuning=0.0, **kwargs).swapaxes(-1, -2)
  ours = np.asarray(audio.chroma_stft(x, sr=16000, **kwargs))
  assert ours.shape == ref.shape
  np.testing.assert_allclose(ours, ref, atol=1e-5)
  silent = np.asarray(audio.chroma_stft(np.zeros(4000, np.float32), sr=16000, **kwargs))
  assert np.all(silent == 0)  # all-zero frames stay zero, as librosa leaves them


CQT_CASES = [  # fmin, n_bins, bins_per_octave, hop_length, sparsity, interior / all tolerance
    (C1_HZ, 84, 12, 512, 0.0, 1e-4, 3e-3), (65.40639, 72, 12, 256, 0.0, 1e-4, 3e-3),
    (C1_HZ, 84, 12, 256, 0.01, 1e-4, 3e-3),  # librosa's default sparsity
    (55.0, 96, 24, 256, 0.0, 1e-2, 1e-2)]  # librosa resamples before its top octave here


@pytest.mark.parametrize("fmin,n_bins,bpo,hop,sparsity,tol_inner,tol_all", CQT_CASES)
def test_cqt_matches_librosa(fmin, n_bins, bpo, hop, sparsity, tol_inner, tol_all):
  x = chirp_noise(16000, 3.0, f0=50.0, f1=3000.0)
  kw = dict(sr=16000, fmin=fmin, n_bins=n_bins, bins_per_octave=bpo, hop_length=hop, sparsity=sparsity)
  ref = librosa.cqt(x, **kw).swapaxes(-1, -2)
  ours = np.asarray(audio.cqt(x, **kw))
  assert ours.shape == ref.shape and ours.dtype == np.complex64
  peak = np.abs(ref).max()
  assert np.abs(ours - ref).max() <= tol_all * peak
  _, lengths = audio.cqt_filterbank(sr=16000, fmin=fmin, n_bins=n_bins, bins_per_octave=bpo)
  edge = int(np.ceil(lengths.max() / 2 / hop)) + 1  # frames whose kernels reach past the ends,
  inner = slice(edge, -edge)  # where the two resamplers pad the signal in their own ways
  assert np.abs(ours[inner] - ref[inner]).max() <= tol_inner * peak


def test_cqt_refuses_bins_past_nyquist():
  with pytest.raises(ValueError, match="Nyquist"):
    audio.cqt(np.zeros(8000, np.float32), sr=8000, n_bins=84)


def _reference_gammatone(sr, n_fft, n_bands, fmin, fmax, order=4):
  """Glasberg & Moore (1990) ERB and ERB-rate, Patterson et al. (1992) gammatone magnitude
  |1 + j (f - fc) / (1.019 ERB(fc))|^-n, written out with loops in float64."""
  e_lo = 21.4 * np.log10(1 + 0.00437 * fmin)
  e_hi = 21.4 * np.log10(1 + 0.00437 * fmax)
  centres = [(10 ** ((e_lo + (e_hi - e_lo) * i / (n_bands - 1)) / 21.4) - 1) / 0.00437
             for i in range(n_bands)]
  freqs = [k * sr / n_fft for k in range(n_fft // 2 + 1)]
  w = np.zeros((n_bands, len(freqs)))
  for i, fc in enumerate(centres):
    bw = 1.019 * 24.7 * (4.37 * fc / 1000 + 1)
    for k, f in enumerate(freqs):
      w[i, k] = abs(1 + 1j * (f - fc) / bw) ** (-order)
  return np.array(centres), w


@pytest.mark.parametrize("sr,n_fft,n_bands,fmin,fmax", [(16000, 512, 64, 50.0, 8000.0),
                                                        (22050, 1024, 32, 100.0, 6000.0)])
def test_gammatone_matches_the_published_formulas(sr, n_fft, n_bands, fmin, fmax):
  centres, ref = _reference_gammatone(sr, n_fft, n_bands, fmin, fmax)
  np.testing.assert_allclose(gammatone.gammatone_frequencies(n_bands, fmin, fmax), centres, rtol=1e-10)
  bank = audio.gammatone_filterbank(sr=sr, n_fft=n_fft, n_bands=n_bands, fmin=fmin, fmax=fmax)
  np.testing.assert_allclose(bank, ref, atol=1e-6)
  # Each filter peaks at the FFT bin nearest its centre, and bandwidth grows with frequency.
  bins = np.arange(n_fft // 2 + 1) * sr / n_fft
  assert np.all(np.abs(bins[np.argmax(bank, axis=1)] - centres) <= sr / n_fft / 2 + 1e-9)
  half_power = (bank ** 2 >= 0.5).sum(axis=1)
  assert half_power[-1] > half_power[0]
  x = chirp_noise(sr, 1.0)
  spec = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=n_fft // 2)) ** 2
  want = (ref ** 2) @ spec
  got = np.asarray(audio.gammatone_spectrogram(x, sr=sr, n_fft=n_fft, hop_length=n_fft // 2,
                                               n_bands=n_bands, fmin=fmin, fmax=fmax))
  np.testing.assert_allclose(got, want.T, rtol=1e-5, atol=1e-5 * want.max())


def test_erb_scale_round_trip():
  f = np.array([50.0, 440.0, 1000.0, 7999.0])
  np.testing.assert_allclose(gammatone.erb_rate_to_hz(gammatone.hz_to_erb_rate(f)), f, rtol=1e-12)
  np.testing.assert_allclose(audio.erb(1000.0), 24.7 * 5.37)


@pytest.mark.parametrize("fn", [
    lambda x: audio.chroma_stft(x, sr=16000, n_fft=1024, hop_length=256),
    lambda x: jnp.abs(audio.cqt(x, sr=16000, hop_length=256)),
    lambda x: audio.gammatone_spectrogram(x, sr=16000)])
def test_batch_per_clip_jit_and_8_device_sharding(fn):
  x = np.stack([chirp_noise(16000, 1.0, seed=s) * (s + 1) for s in range(8)])
  single = np.stack([np.asarray(fn(c)) for c in x])
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  sharded = jax.device_put(x, NamedSharding(mesh, P("data")))
  out = jax.jit(fn)(sharded)
  np.testing.assert_allclose(np.asarray(out), single, rtol=1e-4, atol=1e-5 * np.abs(single).max())
  assert out.sharding.spec[0] == "data"  # stays split over the batch
