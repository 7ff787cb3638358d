"""Gammatone filter bank on the STFT: a gammatone spectrogram, time-major.

Centre frequencies are equally spaced on the ERB-rate scale (Glasberg & Moore 1990); each
filter weighs the FFT bins by the magnitude response of a 4th-order gammatone filter
(Patterson et al. 1992), and the power spectrogram is summed through the squared weights
(the FFT approximation of a gammatone filter bank's band energies, as in Ellis's
"gammatonegram").
"""
import jax.numpy as jnp
import numpy as np

from mirjax.audio import spectral

ERB_MIN = 24.7  # Hz, Glasberg & Moore (1990): the ERB at 0 Hz
GAMMATONE_B = 1.019  # bandwidth factor of a 4th-order gammatone (Patterson et al. 1992)


def erb(f):
  """Equivalent rectangular bandwidth in Hz at frequency ``f`` Hz: 24.7 (4.37 f / 1000 + 1)."""
  return ERB_MIN * (4.37e-3 * np.asarray(f, np.float64) + 1.0)  # Glasberg & Moore (1990), eq. 3


def hz_to_erb_rate(f):
  """ERB-rate (number of ERBs below ``f`` Hz): 21.4 log10(1 + 0.00437 f)."""
  return 21.4 * np.log10(1.0 + 4.37e-3 * np.asarray(f, np.float64))  # Glasberg & Moore (1990), eq. 4


def erb_rate_to_hz(e):
  """Inverse of `hz_to_erb_rate`."""
  return (10.0 ** (np.asarray(e, np.float64) / 21.4) - 1.0) / 4.37e-3


def gammatone_frequencies(n_bands=64, fmin=50.0, fmax=8000.0):
  """``n_bands`` centre frequencies in Hz, equally spaced in ERB-rate from ``fmin`` to ``fmax``
  (both included), increasing; float64."""
  return erb_rate_to_hz(np.linspace(hz_to_erb_rate(fmin), hz_to_erb_rate(fmax), n_bands))


def gammatone_response(freqs_hz, centres_hz, order=4):
  """Magnitude responses |H(f)| = |1 + j (f - fc) / (b ERB(fc))|^(-order) of gammatone
  filters, 1 at each centre (the usual single-sided approximation of the n-th order
  gammatone's transfer function, b = 1.019).

  Returns float64 (n_centres, n_freqs).
  """
  fc = np.asarray(centres_hz, np.float64)[:, None]
  bw = GAMMATONE_B * erb(fc)
  x = (np.asarray(freqs_hz, np.float64)[None, :] - fc) / bw
  return (1.0 + x ** 2) ** (-order / 2.0)  # |1 + j x|^-n


def gammatone_filterbank(*, sr, n_fft, n_bands=64, fmin=50.0, fmax=None, order=4):
  """Gammatone weights on the ``n_fft // 2 + 1`` FFT bins from 0 to ``sr / 2``.

  Parameters
  ----------
  sr : float, sampling rate in Hz
  n_fft : int, FFT size
  n_bands : int, number of filters (default 64)
  fmin, fmax : float, lowest and highest centre frequency in Hz (defaults 50 and ``sr / 2``)
  order : int, gammatone order (default 4)

  Returns
  -------
  np.ndarray float32, shape (n_bands, n_fft // 2 + 1): magnitude weights, peak 1 at each centre
  """
  fmax = sr / 2.0 if fmax is None else fmax
  freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
  return gammatone_response(freqs, gammatone_frequencies(n_bands, fmin, fmax), order).astype(np.float32)


def gammatone_spectrogram(x, *, sr, n_fft=512, hop_length=256, n_bands=64, fmin=50.0, fmax=None,
                          order=4, win_length=None, window="hann", center=True,
                          pad_mode="constant"):
  """Gammatone band power ``G = |STFT(x)|^2 @ (W ** 2).T``, time-major.

  Parameters
  ----------
  x : array (..., n_samples), audio at ``sr`` Hz
  sr : float, Hz
  n_fft, hop_length, win_length, window, center, pad_mode : see `spectral.stft`
    (defaults 512, 256, n_fft, "hann", True, "constant")
  n_bands, fmin, fmax, order : see `gammatone_filterbank`

  Returns
  -------
  G : float32, shape (..., n_frames, n_bands)
  """
  weights = gammatone_filterbank(sr=sr, n_fft=n_fft, n_bands=n_bands, fmin=fmin, fmax=fmax,
                                 order=order)
  spec = spectral.spectrogram(jnp.asarray(x, jnp.float32), n_fft, hop_length, win_length,
                              window, center, pad_mode, power=2.0)
  return spec @ (weights ** 2).T  # band energy through |H|^2
