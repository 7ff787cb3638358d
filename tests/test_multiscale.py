"""Multiscale representations (mirjax/audio/multiscale.py) against direct NumPy/SciPy
implementations of their definitions."""
import librosa
import numpy as np
import pytest
from scipy import ndimage

from mirjax.audio import multiscale

SR = 16000


def _clip(n=SR, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(n) / SR
  return (0.3 * np.sin(2 * np.pi * 440 * t * (1 + t)) + 0.05 * rng.standard_normal(n)).astype(np.float32)


W = np.array([1, 4, 6, 4, 1]) / 16  # Burt & Adelson's generating kernel, a = 0.375


def _reduce(g):  # REDUCE by definition: low-pass along frames, keep the even frames
  return ndimage.convolve1d(g, W, axis=-2, mode="reflect")[..., ::2, :]


def _expand(g, frames):  # EXPAND by definition: zeros between frames, cut, 2 x the same low-pass
  up = np.zeros(g.shape[:-2] + (2 * g.shape[-2], g.shape[-1]), g.dtype)
  up[..., ::2, :] = g
  return ndimage.convolve1d(up[..., :frames, :], 2 * W, axis=-2, mode="reflect")


def test_multires_spectrograms_are_librosa_mels_of_each_window_on_one_grid():
  x = _clip()
  levels = multiscale.multires_spectrograms(x, sr=SR, n_ffts=(1024, 2048, 4096), hop_length=512, n_mels=40)
  assert [l.shape for l in levels] == [(1 + len(x) // 512, 40)] * 3
  for n_fft, got in zip((1024, 2048, 4096), levels):
    want = np.log1p(1e4 * librosa.feature.melspectrogram(y=x, sr=SR, n_fft=n_fft, hop_length=512, n_mels=40)).T
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("frames", [37, 64, 1])
def test_gaussian_pyramid_is_repeated_smoothing_and_downsampling(frames):
  S = np.random.default_rng(frames).standard_normal((2, frames, 5)).astype(np.float32)
  got = multiscale.gaussian_pyramid(S, levels=4)
  want = [S]
  for _ in range(3):
    want.append(_reduce(want[-1]))
  assert [g.shape for g in got] == [w.shape for w in want]
  assert got[1].shape[1] == -(-frames // 2)
  for g, w in zip(got, want):
    np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("frames", [37, 64])
def test_laplacian_pyramid_is_differences_of_gaussian_levels_and_collapses_back(frames):
  S = np.random.default_rng(frames).standard_normal((frames, 6)).astype(np.float32)
  g = [S]
  for _ in range(3):
    g.append(_reduce(g[-1]))
  want = [g[l] - _expand(g[l + 1], g[l].shape[0]) for l in range(3)] + [g[3]]
  got = multiscale.laplacian_pyramid(S, levels=4)
  for a, b in zip(got, want):
    np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(multiscale.collapse_laplacian(got)), S, rtol=1e-5, atol=1e-5)
  # a Laplacian level of a slowly varying input is small: it holds the detail only
  smooth = np.repeat(np.linspace(0, 1, frames, dtype=np.float32)[:, None], 3, axis=1)
  assert float(np.abs(np.asarray(multiscale.laplacian_pyramid(smooth, 3)[0])[8:-8]).max()) < 1e-5


def test_representation_levels_and_a_bad_name():
  x = np.stack([_clip(seed=0), _clip(seed=1)])
  for name, n in (("multires", 3), ("gaussian", 4), ("laplacian", 4)):
    levels = multiscale.representation(x, name, sr=SR, n_mels=16, levels=4)
    assert len(levels) == n and all(l.shape[0] == 2 and l.shape[-1] == 16 for l in levels)
  with pytest.raises(ValueError, match="laplacian"):
    multiscale.representation(x, "wavelet", sr=SR)
