"""Constant-Q transform, time-major, computed at the full sample rate.

Bin k has centre frequency f_k = fmin 2^(k / B) (B bins per octave) and a Hann-windowed
complex sinusoid of length L_k = Q sr / f_k as its kernel, with Q = filter_scale / alpha
and alpha the relative bandwidth of the bins (Brown 1991; Schörkhuber & Klapuri 2010).
The kernels are applied in the frequency domain (Brown & Puckette 1992): one STFT of size
n_fft >= max L_k with a rectangular window, times each kernel's spectrum. librosa computes
the same kernels octave by octave on a resampled signal; computing every octave at the
full rate skips the resampling, so the two differ by what the resampler does to the lower
octaves (measured in tests/test_audio_views.py).
"""
import functools

import jax.numpy as jnp
import numpy as np
import scipy.signal

from mirjax.audio import spectral

C1_HZ = 32.70319566257483  # librosa's default fmin, note C1
HANN_BANDWIDTH = 1.50018310546875  # a Hann window's equivalent noise bandwidth, in bins


def cqt_frequencies(n_bins=84, fmin=C1_HZ, bins_per_octave=12, tuning=0.0):
  """Centre frequencies f_k = fmin 2^((k + tuning) / B), Hz, float64 (``tuning`` in bins)."""
  return fmin * 2.0 ** ((np.arange(n_bins) + tuning) / bins_per_octave)


def relative_bandwidth(freqs):
  """alpha_k = (2^(2 / b_k) - 1) / (2^(2 / b_k) + 1), with b_k the local bins per octave
  around f_k (a centred difference of log2 f; one-sided at the ends)."""
  logf = np.log2(np.asarray(freqs, np.float64))
  bpo = np.empty_like(logf)
  bpo[0], bpo[-1] = 1.0 / (logf[1] - logf[0]), 1.0 / (logf[-1] - logf[-2])
  bpo[1:-1] = 2.0 / (logf[2:] - logf[:-2])
  r = 2.0 ** (2.0 / bpo)
  return (r - 1.0) / (r + 1.0)  # a bin's bandwidth relative to its centre frequency


def cqt_lengths(freqs, sr, filter_scale=1.0):
  """Kernel lengths L_k = Q_k sr / f_k in samples (float), Q_k = filter_scale / alpha_k."""
  freqs = np.asarray(freqs, np.float64)
  return filter_scale / relative_bandwidth(freqs) * sr / freqs  # L = Q sr / f (Brown 1991)


def _sparsify(rows: np.ndarray, quantile: float) -> np.ndarray:
  """Zero, in each row, the smallest-magnitude entries whose magnitudes add up to at most
  `quantile` of the row's total (librosa's ``sparsify_rows``)."""
  if quantile <= 0:
    return rows
  mags = np.abs(rows)
  order = np.argsort(mags, axis=1)
  cum = np.cumsum(np.take_along_axis(mags, order, axis=1), axis=1) / mags.sum(axis=1, keepdims=True)
  out = rows.copy()
  for i in range(rows.shape[0]):
    cut = np.searchsorted(cum[i], quantile)
    out[i, order[i, :cut]] = 0.0
  return out


@functools.lru_cache(maxsize=16)
def cqt_filterbank(*, sr, fmin=C1_HZ, n_bins=84, bins_per_octave=12, filter_scale=1.0, norm=1,
                   sparsity=0.01, window="hann", tuning=0.0):
  """Spectra of the CQT kernels, for `cqt`.

  Parameters
  ----------
  sr : float, Hz
  fmin : float, lowest centre frequency in Hz (default C1 = 32.70 Hz)
  n_bins, bins_per_octave : int (defaults 84 and 12: seven octaves of semitones)
  filter_scale : float, multiplies every kernel length (default 1)
  norm : kernels are divided by their ``norm``-norm before scaling by L_k / n_fft (default 1)
  sparsity : float in [0, 1), share of each kernel spectrum's magnitude zeroed (default 0.01)
  window : kernel window (default "hann")
  tuning : float, offset of the bins in fractions of a bin (default 0.0)

  Returns
  -------
  (basis complex64 (n_bins, n_fft // 2 + 1), n_fft, lengths float64 (n_bins,)), cached and
  read-only; ``n_fft`` is the power of 2 that holds the longest kernel.
  """
  freqs = cqt_frequencies(n_bins, fmin, bins_per_octave, tuning)
  lengths = cqt_lengths(freqs, sr, filter_scale)
  top = freqs[-1] * (1.0 + 0.5 * HANN_BANDWIDTH * relative_bandwidth(freqs)[-1] / filter_scale)
  if top > sr / 2:
    raise ValueError(f"the top CQT bin ({freqs[-1]:.1f} Hz) reaches past Nyquist ({sr / 2} Hz): "
                     "use fewer bins or a higher sample rate")
  n_fft = int(2 ** np.ceil(np.log2(lengths.max())))
  kernels = np.zeros((n_bins, n_fft), np.complex128)
  for k, (length, f) in enumerate(zip(lengths, freqs)):
    t = np.arange(np.floor(-length / 2), np.floor(length / 2))  # centred on sample 0
    sig = np.exp(2j * np.pi * f * t / sr) * scipy.signal.get_window(window, len(t), fftbins=True)
    sig /= np.linalg.norm(sig, ord=norm)
    start = (n_fft - len(sig)) // 2
    kernels[k, start:start + len(sig)] = sig * (length / n_fft)  # L / n_fft: n_fft-independent output
  basis = _sparsify(np.fft.fft(kernels, axis=1)[:, :n_fft // 2 + 1], sparsity).astype(np.complex64)
  basis.setflags(write=False)
  return basis, n_fft, lengths


def _bands(basis, groups):
  """Split the bins into `groups` runs and give each run's nonzero FFT-bin range."""
  out = []
  for rows in np.array_split(np.arange(basis.shape[0]), groups):
    cols = np.flatnonzero(np.any(basis[rows] != 0, axis=0))
    out.append((rows, cols[0], cols[-1] + 1))
  return out


def cqt(x, *, sr, hop_length=512, fmin=C1_HZ, n_bins=84, bins_per_octave=12, filter_scale=1.0,
        norm=1, sparsity=0.01, window="hann", scale=True, pad_mode="constant", tuning=0.0):
  """Constant-Q transform, close to ``librosa.cqt(...).swapaxes(-1, -2)`` (see the module
  docstring for the difference).

  ``C[t, k] = sum_f A_k[f] X_t[f] / sqrt(L_k)``, with ``A_k`` bin k's kernel spectrum
  (`cqt_filterbank`) and ``X_t`` the rectangular-window STFT of the n_fft samples centred on
  sample ``t * hop``.

  Parameters
  ----------
  x : array (..., n_samples), audio at ``sr`` Hz
  sr : float, Hz
  hop_length : int, samples between frames (default 512)
  fmin, n_bins, bins_per_octave, filter_scale, norm, sparsity, window, tuning :
    see `cqt_filterbank` (defaults C1, 84, 12, 1, 1, 0.01, "hann", 0.0)
  scale : bool, divide bin k by sqrt(L_k) (default True, as librosa)
  pad_mode : str, padding of the centred frames (default "constant": zeros)

  Returns
  -------
  C : complex64, shape (..., 1 + n_samples // hop_length, n_bins)
  """
  basis, n_fft, lengths = cqt_filterbank(
      sr=sr, fmin=float(fmin), n_bins=n_bins, bins_per_octave=bins_per_octave,
      filter_scale=float(filter_scale), norm=norm, sparsity=float(sparsity), window=window,
      tuning=float(tuning))
  spec = spectral.stft(jnp.asarray(x, jnp.float32), n_fft, hop_length, window=np.ones(n_fft),
                       center=True, pad_mode=pad_mode)
  octaves = max(1, int(np.ceil(n_bins / bins_per_octave)))
  parts = [spec[..., lo:hi] @ basis[rows, lo:hi].T for rows, lo, hi in _bands(basis, octaves)]
  out = jnp.concatenate(parts, axis=-1)  # kernels are narrow: each octave touches a band of bins
  if scale:
    out = out / np.sqrt(lengths).astype(np.float32)
  return out
