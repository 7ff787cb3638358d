"""Constant-Q transform, time-major, computed octave by octave on a decimated signal.

Bin k has centre frequency f_k = fmin 2^(k / B) (B bins per octave) and a Hann-windowed
complex sinusoid of length L_k = Q sr / f_k as its kernel, with Q = filter_scale / alpha
and alpha the relative bandwidth of the bins (Brown 1991; Schörkhuber & Klapuri 2010).
The kernels are applied in the frequency domain (Brown & Puckette 1992): an STFT with a
rectangular window times each kernel's spectrum. The top octave is computed at the full
rate; each lower octave on the signal halved once more (a 41-tap Kaiser half-band
low-pass, flat to 2e-5 below 0.135 of the input rate and 95 dB down above 0.365 of it,
whose content would alias onto the octave's bins), so every octave uses an FFT about the
size of the top octave's, and each octave's kernels are sampled at its own rate, as
librosa does; librosa resamples with soxr instead of this filter (tests/test_audio_views.py
measures the difference: 3e-5 of the peak).
"""
import functools

import jax
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


def _kernel_spectra(freqs, lengths, sr, norm, sparsity, window):
  """(basis complex64 (len(freqs), n_fft // 2 + 1), n_fft) of kernels of the given lengths
  (samples at rate `sr`); n_fft is the power of 2 that holds the longest."""
  n_fft = int(2 ** np.ceil(np.log2(lengths.max())))
  kernels = np.zeros((len(freqs), n_fft), np.complex128)
  for k, (length, f) in enumerate(zip(lengths, freqs)):
    t = np.arange(np.floor(-length / 2), np.floor(length / 2))  # centred on sample 0
    sig = np.exp(2j * np.pi * f * t / sr) * scipy.signal.get_window(window, len(t), fftbins=True)
    sig /= np.linalg.norm(sig, ord=norm)
    start = (n_fft - len(sig)) // 2
    kernels[k, start:start + len(sig)] = sig * (length / n_fft)  # L / n_fft: n_fft-independent output
  return _sparsify(np.fft.fft(kernels, axis=1)[:, :n_fft // 2 + 1], sparsity).astype(np.complex64), n_fft


@functools.lru_cache(maxsize=16)
def cqt_filterbank(*, sr, fmin=C1_HZ, n_bins=84, bins_per_octave=12, filter_scale=1.0, norm=1,
                   sparsity=0.01, window="hann", tuning=0.0, hop_length=None):
  """The CQT kernels' spectra, octave by octave, for `cqt`.

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
  hop_length : int or None, the frame hop; octaves are halved only while it stays even
    (None: every octave below the top is halved once more)

  Returns
  -------
  (octaves, lengths): ``octaves`` is a tuple, from the top octave down, of
  ``(bins, decimation, basis complex64 (len(bins), n_fft // 2 + 1), n_fft)``, where the
  octave's bins (indices) are computed on the signal decimated by ``decimation``;
  ``lengths`` (n_bins,) are the kernel lengths at ``sr``. Cached, read-only.
  """
  freqs = cqt_frequencies(n_bins, fmin, bins_per_octave, tuning)
  lengths = cqt_lengths(freqs, sr, filter_scale)
  top = freqs[-1] * (1.0 + 0.5 * HANN_BANDWIDTH * relative_bandwidth(freqs)[-1] / filter_scale)
  if top > sr / 2:
    raise ValueError(f"the top CQT bin ({freqs[-1]:.1f} Hz) reaches past Nyquist ({sr / 2} Hz): "
                     "use fewer bins or a higher sample rate")
  octaves, decimation, end = [], 1, n_bins
  while end > 0:
    bins = np.arange(max(0, end - bins_per_octave), end)
    rate = sr / decimation
    basis, n_fft = _kernel_spectra(freqs[bins], lengths[bins] / decimation, rate, norm, sparsity, window)
    basis.setflags(write=False)
    octaves.append((bins, decimation, basis, n_fft))
    end -= bins_per_octave
    # Halve the rate for the next octave while its bins stay where the half-band filter is
    # flat (below 0.13 of the rate) and the hop stays a whole number of samples.
    k = max(0, end - 1)
    reach = freqs[k] * (1.0 + 0.5 * HANN_BANDWIDTH * relative_bandwidth(freqs)[k] / filter_scale)
    if reach < 0.13 * rate and (hop_length is None or (hop_length // decimation) % 2 == 0):
      decimation *= 2
  lengths.setflags(write=False)
  return tuple(octaves), lengths


HALFBAND = scipy.signal.firwin(41, 0.5, window=("kaiser", 9.0)).astype(np.float32)


def _halve(x):
  """x (..., n) low-passed by `HALFBAND` (zero-phase, zeros outside) and decimated by 2:
  sample m of the output is sample 2m of the input."""
  lead, n = x.shape[:-1], x.shape[-1]
  y = jax.lax.conv_general_dilated(x.reshape(-1, n, 1), HALFBAND[::-1, None, None], (2,),
                                   [(20, 20)], dimension_numbers=("NWC", "WIO", "NWC"))
  return y.reshape(lead + (y.shape[1],))


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
  octaves, lengths = cqt_filterbank(
      sr=sr, fmin=float(fmin), n_bins=n_bins, bins_per_octave=bins_per_octave,
      filter_scale=float(filter_scale), norm=norm, sparsity=float(sparsity), window=window,
      tuning=float(tuning), hop_length=hop_length)
  x = jnp.asarray(x, jnp.float32)
  n_frames = 1 + x.shape[-1] // hop_length
  parts, signal, at = [], x, 1
  for bins, decimation, basis, n_fft in octaves:
    while at < decimation:
      signal, at = _halve(signal), at * 2
    spec = spectral.stft(signal, n_fft, hop_length // decimation, window=np.ones(n_fft),
                         center=True, pad_mode=pad_mode)[..., :n_frames, :]
    cols = np.flatnonzero(np.any(basis != 0, axis=0))  # a narrow band of FFT bins
    lo, hi = cols[0], cols[-1] + 1
    # Kernels at rate sr / d are L / d samples long: the correlation comes out d times
    # smaller than at the full rate, so scale it back.
    parts.insert(0, (spec[..., lo:hi] @ basis[:, lo:hi].T) * float(decimation))
  out = jnp.concatenate(parts, axis=-1)
  if scale:
    out = out / np.sqrt(lengths).astype(np.float32)
  return out
