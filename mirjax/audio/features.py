"""Hand-crafted features that self-supervised workers reconstruct: RMS energy, spectral
contrast, onset strength and tempogram, YIN pitch; time-major, jit-friendly, each equal to
its librosa counterpart per clip (tests/test_audio_features.py states the tolerances).
"""
import jax
import jax.numpy as jnp
import numpy as np

from mirjax.audio import mel as mel_lib
from mirjax.audio import spectral

_TINY = float(np.finfo(np.float32).tiny)


def rms(x, *, frame_length=2048, hop_length=512, center=True, pad_mode="constant"):
  """Root-mean-square energy of each frame, ``librosa.feature.rms(...)[0]`` per clip:
  x (..., n) -> (..., 1 + n // hop_length) (centred frames)."""
  x = jnp.asarray(x, jnp.float32)
  if center:
    x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(frame_length // 2,) * 2], mode=pad_mode)
  frames = spectral.frame(x, frame_length, hop_length)
  return jnp.sqrt(jnp.mean(jnp.square(frames), axis=-1))


def _contrast_bands(sr, n_fft, n_bands, fmin):
  """librosa's octave sub-bands of FFT bins: [0, fmin], [fmin, 2 fmin], ..., above; each
  band but the first also takes the bin just below it, and all but the last drop their top bin."""
  freq = np.linspace(0, sr / 2, 1 + n_fft // 2)
  octa = np.zeros(n_bands + 2)
  octa[1:] = fmin * 2.0 ** np.arange(n_bands + 1)
  if np.any(octa[:-1] >= 0.5 * sr):
    raise ValueError("spectral contrast bands exceed Nyquist: reduce fmin or n_bands")
  bands = []
  for k, (lo, hi) in enumerate(zip(octa[:-1], octa[1:])):
    mask = (freq >= lo) & (freq <= hi)
    idx = np.flatnonzero(mask)
    if k > 0:
      mask[idx[0] - 1] = True
    if k == n_bands:
      mask[idx[-1] + 1:] = True
    rows = np.flatnonzero(mask)  # contiguous
    count = len(rows)  # the quantile counts the band before its top bin is dropped
    bands.append((rows if k == n_bands else rows[:-1], count))
  return bands


def _mean_of_largest(x, k):
  """Mean of the k largest values along the last axis (repeated values counted as often as
  they occur). Up to 4: k passes that each take out one arg-max, which XLA CPU runs faster
  than ``lax.top_k`` (1.1x for spectral contrast); above, ``lax.top_k``."""
  if k > 4:
    return jnp.mean(jax.lax.top_k(x, k)[0], axis=-1)
  index = jax.lax.broadcasted_iota(jnp.int32, x.shape, x.ndim - 1)
  total = jnp.max(x, axis=-1)
  for _ in range(k - 1):
    x = jnp.where(index == jnp.argmax(x, axis=-1)[..., None], -jnp.inf, x)
    total = total + jnp.max(x, axis=-1)
  return total / k


def spectral_contrast(x=None, *, sr, S=None, n_fft=2048, hop_length=512, n_bands=6, fmin=200.0,
                      quantile=0.02, linear=False):
  """Spectral contrast (Jiang et al. 2002): per octave band, the mean of its strongest
  ``quantile`` of bins against its weakest, ``librosa.feature.spectral_contrast(...).T``.

  Parameters
  ----------
  x : array (..., n) or None, audio; S : (..., frames, 1 + n_fft // 2) magnitude, or None
  sr, n_fft, hop_length : Hz and STFT settings (defaults 2048, 512; centred, zero-padded)
  n_bands : int, octave bands above ``fmin`` (default 6; plus the band below it)
  fmin : float, top of the lowest band in Hz (default 200)
  quantile : float in (0, 1), share of a band's bins in its peak and its valley (0.02)
  linear : bool, peak - valley instead of their difference in dB (default False)

  Returns
  -------
  float32 (..., frames, n_bands + 1)
  """
  if S is None:
    S = spectral.spectrogram(jnp.asarray(x, jnp.float32), n_fft, hop_length, power=1.0)
  n_fft = 2 * (S.shape[-1] - 1)
  peaks, valleys = [], []
  for rows, count in _contrast_bands(sr, n_fft, n_bands, fmin):
    k = max(int(np.rint(quantile * count)), 1)
    band = S[..., rows[0]:rows[-1] + 1]  # contiguous bins: a slice, not a gather
    if k == 1:  # the extremes themselves: reductions
      peaks.append(jnp.max(band, axis=-1))
      valleys.append(jnp.min(band, axis=-1))
      continue
    # the k strongest and k weakest bins: a partial selection, not a sort
    peaks.append(_mean_of_largest(band, k))
    valleys.append(-_mean_of_largest(-band, k))
  peak, valley = jnp.stack(peaks, -1), jnp.stack(valleys, -1)
  if linear:
    return peak - valley
  db = lambda p: 10.0 * jnp.log10(jnp.maximum(p, 1e-10))  # librosa's power_to_db, no clipping
  return db(peak) - db(valley)


def onset_strength(x, *, sr, n_fft=2048, hop_length=512, n_mels=128, lag=1):
  """Spectral flux onset strength, ``librosa.onset.onset_strength(y=x, sr=sr)`` per clip: the
  mean over mel bands of the positive dB increase from frame t - lag to t (Böck & Widmer
  2013 with max_size 1), shifted so frames line up with the centred STFT's.

  Returns float32 (..., 1 + n // hop_length).
  """
  S = mel_lib.log_melspectrogram(x, sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                                 fmax=0.5 * sr)
  flux = jnp.mean(jnp.maximum(0.0, S[..., lag:, :] - S[..., :-lag, :]), axis=-1)
  pad = lag + n_fft // (2 * hop_length)  # centre the onsets on the frames that hold them
  env = jnp.pad(flux, [(0, 0)] * (flux.ndim - 1) + [(pad, 0)])
  return env[..., :S.shape[-2]]


def _autocorrelation(frames, max_lag):
  """sum_n f[n] f[n + k] for k < max_lag along the last axis, through the power spectrum;
  the inverse transform is a matmul (cosines), which keeps batch sharding."""
  n = frames.shape[-1]
  n_pad = int(2 ** np.ceil(np.log2(2 * n - 1)))
  power = jnp.abs(spectral.rfft(jnp.pad(frames, [(0, 0)] * (frames.ndim - 1) + [(0, n_pad - n)]))) ** 2
  k = np.arange(n_pad // 2 + 1)
  weight = np.where((k == 0) | (k == n_pad // 2), 1.0, 2.0) / n_pad
  basis = weight[:, None] * np.cos(2 * np.pi * np.outer(k, np.arange(max_lag)) / n_pad)
  return power @ basis.astype(np.float32)  # irfft(|F|^2)[:max_lag] (Wiener-Khinchin)


def tempogram(x=None, *, sr, onset_envelope=None, hop_length=512, win_length=384):
  """Autocorrelation tempogram, ``librosa.feature.tempogram(...).T`` per clip: the onset
  strength's local autocorrelation in Hann windows of ``win_length`` frames centred on
  each frame (envelope ramped to 0 outside the clip), each frame divided by its maximum
  (Grosche, Müller & Kurth 2010).

  Returns float32 (..., frames, win_length): lag 0 .. win_length - 1 frames.
  """
  env = onset_strength(x, sr=sr, hop_length=hop_length) if onset_envelope is None else onset_envelope
  env = jnp.asarray(env, jnp.float32)
  n = env.shape[-1]
  half = win_length // 2
  padded = jnp.pad(env, [(0, 0)] * (env.ndim - 1) + [(half, half)], mode="linear_ramp", end_values=0)
  idx = np.arange(n)[:, None] + np.arange(win_length)[None, :]
  frames = padded[..., idx] * spectral.get_window("hann", win_length)
  ac = _autocorrelation(frames, win_length)
  top = jnp.max(jnp.abs(ac), axis=-1, keepdims=True)
  return ac / jnp.where(top < _TINY, 1.0, top)


def yin(x, *, fmin, fmax, sr, frame_length=2048, hop_length=None, trough_threshold=0.1,
        center=True, pad_mode="constant"):
  """YIN fundamental frequency (de Cheveigné & Kawahara 2002), ``librosa.yin`` per clip, and
  each frame's aperiodicity (the minimum of the cumulative mean normalised difference: near 0
  for a periodic frame, near 1 for noise).

  Parameters
  ----------
  x : array (..., n), audio
  fmin, fmax : float, lowest and highest f0 searched in Hz; 0 < fmin < fmax <= sr / 2, and a
    period of fmin must fit in a frame: sr / fmin < frame_length - 1 (librosa's conditions)
  sr : sample rate in Hz
  frame_length, hop_length : samples per frame (2048) and between frames (frame_length // 4)
  trough_threshold : float, the absolute threshold of eq. 6 (0.1)

  Returns
  -------
  (f0 Hz, aperiodicity), each float32 (..., 1 + n // hop_length); raises ValueError for
  parameters librosa.yin refuses
  """
  if not 0 < fmin < fmax <= sr / 2:
    raise ValueError(f"yin needs 0 < fmin < fmax <= sr / 2 = {sr / 2}; got fmin={fmin}, fmax={fmax}")
  if sr / fmin >= frame_length - 1:  # else the longest period searched would be cut silently
    raise ValueError(f"yin: fmin={fmin} Hz is too low for frame_length={frame_length} at sr={sr}: "
                     f"raise fmin above {sr / (frame_length - 1):.3f} Hz or frame_length to at least "
                     f"{int(np.floor(sr / fmin)) + 2}")
  hop_length = frame_length // 4 if hop_length is None else hop_length
  x = jnp.asarray(x, jnp.float32)
  if center:
    x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(frame_length // 2,) * 2], mode=pad_mode)
  frames = spectral.frame(x, frame_length, hop_length)
  min_period = int(np.floor(sr / fmax))
  max_period = min(int(np.ceil(sr / fmin)), frame_length - 1)
  acf = _autocorrelation(frames, max_period + 1)
  energy = jnp.cumsum(jnp.square(frames[..., :max_period]), axis=-1)
  # d(k) = 2 (r(0) - r(k)) - sum_{m < k} x(m)^2, k = 1 .. max_period (librosa's difference)
  diff = 2.0 * (acf[..., :1] - acf[..., 1:]) - energy
  cmnd = diff / (jnp.cumsum(diff, axis=-1) / np.arange(1, max_period + 1) + _TINY)  # eq. 8
  d = cmnd[..., min_period - 1:]  # lags min_period .. max_period
  # Parabolic refinement of each lag from its neighbours (none at the ends).
  a = d[..., 2:] + d[..., :-2] - 2.0 * d[..., 1:-1]
  b = (d[..., 2:] - d[..., :-2]) / 2.0
  inner = jnp.where(jnp.abs(b) >= jnp.abs(a), 0.0, -b / jnp.where(a == 0, 1.0, a))
  zero = jnp.zeros_like(d[..., :1])
  shifts = jnp.concatenate([zero, inner, zero], axis=-1)
  # The first trough below the threshold, else the global minimum (eq. 6's "absolute threshold").
  left = jnp.concatenate([jnp.full_like(d[..., :1], jnp.inf), d[..., :-1]], axis=-1)
  right = jnp.concatenate([d[..., 1:], d[..., -1:]], axis=-1)  # edge: the last may be a trough
  trough = (d < left) & (d <= right)
  trough = trough.at[..., 0].set(d[..., 0] < d[..., 1])
  below = trough & (d < trough_threshold)
  first = jnp.argmax(below, axis=-1)
  lag = jnp.where(jnp.any(below, axis=-1), first, jnp.argmin(d, axis=-1))
  period = min_period + lag + jnp.take_along_axis(shifts, lag[..., None], axis=-1)[..., 0]
  return sr / period, jnp.min(d, axis=-1)
