"""Type-II DCT as a matmul and mel-frequency cepstral coefficients, time-major."""
import functools

import jax.numpy as jnp
import numpy as np

from mirjax.audio import mel


@functools.lru_cache(maxsize=32)
def dct_basis(n_in, n_out=None, norm="ortho"):
  """Type-II DCT matrix ``C`` (n_in, n_out) such that ``x @ C`` is ``scipy.fft.dct(x)``.

  Parameters
  ----------
  n_in : int, input length N
  n_out : int or None, number of leading coefficients kept (default N)
  norm : "ortho" or None
    None: ``y[k] = 2 sum_n x[n] cos(pi k (2n + 1) / 2N)``; "ortho" scales ``y[0]`` by
    ``sqrt(1 / 4N)`` and the rest by ``sqrt(1 / 2N)`` (default "ortho").

  Returns
  -------
  np.ndarray float32, shape (n_in, n_out), read-only (cached)
  """
  n_out = n_in if n_out is None else n_out
  n = np.arange(n_in)[:, None]
  k = np.arange(n_out)[None, :]
  basis = 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2.0 * n_in))  # DCT-II
  if norm == "ortho":
    basis[:, 0] *= np.sqrt(1.0 / (4 * n_in))
    basis[:, 1:] *= np.sqrt(1.0 / (2 * n_in))
  elif norm is not None:
    raise ValueError(f"norm must be 'ortho' or None, got {norm!r}")
  basis = basis.astype(np.float32)
  basis.setflags(write=False)
  return basis


def dct(x, n=None, norm="ortho", axis=-1):
  """Type-II DCT along ``axis``, keeping the first ``n`` coefficients.

  Parameters
  ----------
  x : array, real
  n : int or None, number of output coefficients (default: the input length). Unlike
    ``scipy.fft.dct``'s ``n``, this truncates the output rather than the input.
  norm : "ortho" or None, see `dct_basis` (default "ortho")
  axis : int, axis to transform (default -1)

  Returns
  -------
  array float32, ``x``'s shape with ``axis`` of length ``n``
  """
  x = jnp.moveaxis(jnp.asarray(x, jnp.float32), axis, -1)
  y = x @ dct_basis(x.shape[-1], n, norm)
  return jnp.moveaxis(y, -1, axis)


def mfcc(x=None, *, sr=22050, S=None, n_mfcc=20, norm="ortho", lifter=0, **mel_kwargs):
  """Mel-frequency cepstral coefficients, equal to ``librosa.feature.mfcc(...).T`` per clip.

  Parameters
  ----------
  x : array (..., n_samples) or None, audio at ``sr`` Hz
  sr : float, sampling rate in Hz (default 22050)
  S : array (..., frames, n_mels) or None
    Log-power mel spectrogram in dB; computed from ``x`` as
    ``log_melspectrogram(x, sr=sr, **mel_kwargs)`` (top_db=80 per example) when None.
  n_mfcc : int, number of coefficients (default 20)
  norm : "ortho" or None, DCT normalisation (default "ortho")
  lifter : float >= 0
    Cepstral liftering ``c_k *= 1 + (L / 2) sin(pi (k + 1) / L)`` when ``L > 0`` (default 0).
  **mel_kwargs : passed to `mel.log_melspectrogram` (n_fft, hop_length, n_mels, ...)

  Returns
  -------
  M : float32, shape (..., frames, n_mfcc)
  """
  if S is None:
    if x is None:
      raise ValueError("give either x or S")
    S = mel.log_melspectrogram(x, sr=sr, **mel_kwargs)
  coeffs = dct(S, n=n_mfcc, norm=norm, axis=-1)
  if lifter > 0:
    lift = 1.0 + (lifter / 2.0) * np.sin(np.pi * np.arange(1, 1 + n_mfcc) / lifter)  # HTK liftering
    coeffs = coeffs * lift.astype(np.float32)
  elif lifter < 0:
    raise ValueError("lifter must be non-negative")
  return coeffs
