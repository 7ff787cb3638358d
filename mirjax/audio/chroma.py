"""Chroma: the energy of the 12 pitch classes, from the STFT through a chroma filter bank.

The filter bank is Ellis's chromagram construction, as librosa's ``filters.chroma``: every
FFT bin above 0 Hz is placed on a log-frequency axis in chroma bins, each chroma row is a
Gaussian bump (half-width one FFT bin's spacing on that axis) around its pitch class in
every octave, columns are normalised, and a Gaussian over octaves centred on ``ctroct``
weighs the bins.
"""
import jax.numpy as jnp
import numpy as np

from mirjax.audio import spectral

A0_OVER_A4 = 1.0 / 16.0  # octaves are counted from A0 = 440 / 16 Hz


def hz_to_octs(freqs, tuning=0.0, bins_per_octave=12):
  """Octave number of ``freqs`` Hz counted from A0 (27.5 Hz), shifted by ``tuning`` bins."""
  a440 = 440.0 * 2.0 ** (tuning / bins_per_octave)
  return np.log2(np.asarray(freqs, np.float64) / (a440 * A0_OVER_A4))


def chroma_filterbank(*, sr, n_fft, n_chroma=12, tuning=0.0, ctroct=5.0, octwidth=2.0, norm=2,
                      base_c=True):
  """Chroma weights on the ``n_fft // 2 + 1`` FFT bins, equal to ``librosa.filters.chroma``.

  Parameters
  ----------
  sr : float, Hz
  n_fft : int, FFT size
  n_chroma : int, chroma bins per octave (default 12)
  tuning : float, tuning offset in fractions of a chroma bin (default 0.0)
  ctroct, octwidth : float or None, centre (octaves above A0) and width of the Gaussian
    octave weighting (defaults 5.0 and 2.0; ``octwidth=None``: no weighting)
  norm : float or None, norm each FFT bin's column is divided by (default 2)
  base_c : bool, rows start at C (True, default) or at A

  Returns
  -------
  np.ndarray float32, shape (n_chroma, n_fft // 2 + 1)
  """
  freqs = np.arange(1, n_fft) * (sr / n_fft)  # every FFT bin but 0 Hz, both halves
  pos = n_chroma * hz_to_octs(freqs, tuning, n_chroma)  # position in chroma bins
  pos = np.concatenate([[pos[0] - 1.5 * n_chroma], pos])  # 0 Hz: 1.5 octaves below bin 1
  width = np.concatenate([np.maximum(np.diff(pos), 1.0), [1.0]])  # bin spacing, >= 1 chroma bin
  half = np.round(n_chroma / 2.0)
  dist = pos[None, :] - np.arange(n_chroma)[:, None]
  dist = np.remainder(dist + half + 10 * n_chroma, n_chroma) - half  # wrapped to [-n/2, n/2)
  w = np.exp(-0.5 * (2.0 * dist / width[None, :]) ** 2)  # Gaussian bumps, two per spacing
  if norm is not None:
    length = np.sum(np.abs(w) ** norm, axis=0) ** (1.0 / norm) if np.isfinite(norm) else np.max(np.abs(w), axis=0)
    w = w / np.where(length > np.finfo(np.float64).tiny, length, 1.0)[None, :]
  if octwidth is not None:
    w = w * np.exp(-0.5 * ((pos / n_chroma - ctroct) / octwidth) ** 2)[None, :]  # octave weighting
  if base_c:
    w = np.roll(w, -3 * (n_chroma // 12), axis=0)  # A-based rows -> C-based rows
  return w[:, :1 + n_fft // 2].astype(np.float32)


def chroma_stft(x=None, *, sr, S=None, norm=np.inf, n_fft=2048, hop_length=512, win_length=None,
                window="hann", center=True, pad_mode="constant", tuning=0.0, n_chroma=12, **kw):
  """Chromagram of audio or of a power spectrogram, equal to
  ``librosa.feature.chroma_stft(..., tuning=tuning).T`` per clip.

  Parameters
  ----------
  x : array (..., n_samples) or None, audio at ``sr`` Hz
  sr : float, Hz
  S : array (..., frames, n_fft // 2 + 1) or None, a power spectrogram used instead of ``x``
  norm : float or None, each frame is divided by its ``norm``-norm (default inf: its max);
    all-zero frames stay zero
  n_fft, hop_length, win_length, window, center, pad_mode : see `spectral.stft`
    (defaults 2048, 512, n_fft, "hann", True, "constant")
  tuning : float, in fractions of a chroma bin (default 0.0; librosa estimates it when
    given None, which is not done here)
  n_chroma : int (default 12); other keywords go to `chroma_filterbank`

  Returns
  -------
  C : float32, shape (..., frames, n_chroma)
  """
  if S is None:
    if x is None:
      raise ValueError("give either x or S")
    S = spectral.spectrogram(jnp.asarray(x, jnp.float32), n_fft, hop_length, win_length, window,
                             center, pad_mode, power=2.0)
  n_fft = 2 * (S.shape[-1] - 1)
  weights = chroma_filterbank(sr=sr, n_fft=n_fft, n_chroma=n_chroma, tuning=tuning, **kw)
  chroma = S @ weights.T
  if norm is None:
    return chroma
  length = (jnp.max(jnp.abs(chroma), axis=-1, keepdims=True) if np.isinf(norm)
            else jnp.sum(jnp.abs(chroma) ** norm, axis=-1, keepdims=True) ** (1.0 / norm))
  tiny = np.finfo(np.float32).tiny
  return chroma / jnp.where(length < tiny, 1.0, length)  # librosa leaves all-zero frames as they are
