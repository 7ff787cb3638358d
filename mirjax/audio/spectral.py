"""Framing and short-time Fourier transforms in jax.numpy, time-major.

Every output here is (..., frames, bins): the transpose of librosa's (..., bins, frames),
because channels-last layouts are the fast ones on XLA (DESIGN.md section 4). Shapes
are static, so all functions are jit-friendly; the window is a numpy constant made at
trace time.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec


def as_float(x):
  """`x` as a jax array of its own floating precision (float32 unless 64-bit mode gives
  float64 input), integers as float32: DSP keeps the precision it is given."""
  x = jnp.asarray(x)
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


_FFTS = {"rfft": jnp.fft.rfft, "irfft": jnp.fft.irfft, "fft": jnp.fft.fft, "ifft": jnp.fft.ifft}


def _batch_sharding(mesh, shape):
  spec = tuple(shape.sharding.spec)[:len(shape.shape) - 1]
  return NamedSharding(mesh, PartitionSpec(*spec, *[None] * (len(shape.shape) - len(spec))))


# XLA's SPMD partitioner all-gathers an FFT's operand even when only batch axes are sharded
# (checked on jax 0.10.2), so a data-parallel model would transform the whole global batch
# on every device. `_last_axis_parallel` declares a last-axis transform batch-parallel
# instead: leading axes keep their sharding and only the transformed axis must be whole.
@functools.cache
def _last_axis_parallel(plain):
  """`plain` (a function of the last axis alone) partitioned over the leading axes and
  batch-polymorphic under ``vmap``."""
  partitioned = custom_partitioning(plain)
  partitioned.def_partition(
      partition=lambda mesh, args, result: (mesh, plain, _batch_sharding(mesh, args[0]),
                                            (_batch_sharding(mesh, args[0]),)),
      infer_sharding_from_operands=lambda mesh, args, result: _batch_sharding(mesh, args[0]),
      sharding_rule="... n -> ... k", need_replication_factors=("n", "k"))

  @jax.custom_batching.custom_vmap
  def batched(x):
    return partitioned(x)

  @batched.def_vmap
  def _vmap(axis_size, in_batched, x):
    del axis_size, in_batched
    return batched(x), True  # already polymorphic over leading axes
  return batched


@functools.cache
def _plain(kind, n):
  def plain(x):
    return _FFTS[kind](x, n, axis=-1)
  return plain


@functools.cache
def _transposed(kind, n, length, dtype):
  """The transpose of ``_plain(kind, n)`` on inputs of last axis `length` and `dtype` (the
  backward pass of a linear map), itself a last-axis function."""
  plain = _plain(kind, n)

  def transpose(cotangent):
    primal = jax.ShapeDtypeStruct(cotangent.shape[:-1] + (length,), dtype)
    return jax.linear_transpose(plain, primal)(cotangent)[0]
  return transpose


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def fft(x, kind="rfft", n=None):
  """``jnp.fft.<kind>(x, n, axis=-1)`` that keeps the leading axes' sharding, forward and
  backward (its cotangent is the transpose of the same linear map, also batch-parallel).

  Differentiable in reverse mode and under ``vmap``; forward mode (``jax.jvp``) is not
  supported.

  Parameters
  ----------
  x : array (..., length): real for "rfft"; complex (or real, taken as complex) for "irfft",
    "fft" and "ifft"
  kind : "rfft" (default), "irfft", "fft" or "ifft"
  n : int or None, the transform length as numpy's (default: from the input)
  """
  if kind not in _FFTS:
    raise ValueError(f"kind must be one of {sorted(_FFTS)}, got {kind!r}")
  return _last_axis_parallel(_plain(kind, n))(x)


def _fft_fwd(x, kind, n):
  return fft(x, kind, n), jax.ShapeDtypeStruct(x.shape, x.dtype)


def _fft_bwd(kind, n, primal, cotangent):
  transpose = _transposed(kind, n, primal.shape[-1], primal.dtype)
  return (_last_axis_parallel(transpose)(cotangent),)


fft.defvjp(_fft_fwd, _fft_bwd)


def rfft(x):
  """Real FFT along the last axis, ``jnp.fft.rfft(x)``, that keeps batch sharding (see `fft`).

  Parameters
  ----------
  x : float32 array, shape (..., n)

  Returns
  -------
  complex64 array, shape (..., n // 2 + 1)
  """
  return fft(x, "rfft")


def frame(x, frame_length, hop_length):
  """Slice a signal into overlapping frames along its last axis.

  Frame ``i`` holds ``x[..., i * hop_length : i * hop_length + frame_length]``. Built from
  a reshape into hop-sized chunks and a few shifted slices (no gather, no index constant).

  Parameters
  ----------
  x : array, shape (..., n_samples)
  frame_length : int > 0, samples per frame
  hop_length : int > 0, samples between frame starts

  Returns
  -------
  frames : array, shape (..., n_frames, frame_length)
    ``n_frames = 1 + (n_samples - frame_length) // hop_length``.
  """
  x = jnp.asarray(x)
  n = x.shape[-1]
  if n < frame_length:
    raise ValueError(f"signal length {n} < frame_length {frame_length}")
  n_frames = 1 + (n - frame_length) // hop_length
  per_frame = -(-frame_length // hop_length)  # hop-sized chunks touched by one frame
  n_chunks = n_frames + per_frame - 1
  need = n_chunks * hop_length
  if need > n:  # the padded tail only lands in the truncated part of the last frames
    x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, need - n)])
  chunks = x[..., :need].reshape(x.shape[:-1] + (n_chunks, hop_length))
  parts = jnp.stack([chunks[..., k:k + n_frames, :] for k in range(per_frame)], axis=-2)
  frames = parts.reshape(x.shape[:-1] + (n_frames, per_frame * hop_length))
  return frames[..., :frame_length]


def get_window(window, win_length, n_fft=None):
  """A periodic (``fftbins=True``) analysis window, zero-padded to ``n_fft`` at the centre.

  Parameters
  ----------
  window : str, tuple or array
    Anything ``scipy.signal.get_window`` accepts (e.g. "hann"), or the window samples.
  win_length : int, window length in samples
  n_fft : int or None, total length after centred zero padding (default ``win_length``)

  Returns
  -------
  np.ndarray float32, shape (n_fft,)
  """
  n_fft = win_length if n_fft is None else n_fft
  if isinstance(window, (str, tuple)):
    w = scipy.signal.get_window(window, win_length, fftbins=True)
  else:
    w = np.asarray(window, dtype=np.float64)
    if w.shape != (win_length,):
      raise ValueError(f"window has shape {w.shape}, expected ({win_length},)")
  if win_length > n_fft:
    raise ValueError(f"win_length {win_length} > n_fft {n_fft}")
  left = (n_fft - win_length) // 2
  return np.pad(w, (left, n_fft - win_length - left)).astype(np.float32)


def _frames(x, n_fft, hop_length, win_length, window, center, pad_mode):
  """Windowed frames (..., n_frames, n_fft) as librosa's STFT sees them."""
  x = as_float(x)
  win_length = n_fft if win_length is None else win_length
  hop_length = win_length // 4 if hop_length is None else hop_length
  if center:
    widths = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
    x = jnp.pad(x, widths, mode=pad_mode)
  return frame(x, n_fft, hop_length) * get_window(window, win_length, n_fft)


def stft(x, n_fft=2048, hop_length=None, win_length=None, window="hann", center=True,
         pad_mode="constant"):
  """Short-time Fourier transform, equal to ``librosa.stft(...).swapaxes(-1, -2)``.

  ``X[..., t, k] = sum_n w[n] x[n + t * hop_length] exp(-2 pi i k n / n_fft)``, with ``x``
  padded by ``n_fft // 2`` on both sides first when ``center``.

  Parameters
  ----------
  x : array, shape (..., n_samples), real audio
  n_fft : int > 0, FFT size in samples (default 2048)
  hop_length : int > 0 or None, samples between frames (default ``win_length // 4``)
  win_length : int <= n_fft or None, window length (default ``n_fft``)
  window : str, tuple or array, see `get_window` (default periodic "hann")
  center : bool, centre frame ``t`` at sample ``t * hop_length`` (default True)
  pad_mode : str, ``jnp.pad`` mode for centring: "constant" (zeros, librosa 0.11's
    default), "reflect", "edge", ...

  Returns
  -------
  X : complex64, shape (..., n_frames, n_fft // 2 + 1)
  """
  # X[t, k] = sum_n w[n] x[n + t hop] exp(-2 pi i k n / n_fft)
  return rfft(_frames(x, n_fft, hop_length, win_length, window, center, pad_mode))


def spectrogram(x, n_fft=2048, hop_length=None, win_length=None, window="hann",
                center=True, pad_mode="constant", power=2.0):
  """Magnitude spectrogram ``|X| ** power`` of `stft` (same parameters).

  Parameters
  ----------
  power : float > 0, exponent of the magnitude: 1 for magnitude, 2 for power (default 2.0)

  Returns
  -------
  S : float32, shape (..., n_frames, n_fft // 2 + 1)
  """
  spec = stft(x, n_fft, hop_length, win_length, window, center, pad_mode)
  energy = jnp.square(spec.real) + jnp.square(spec.imag)  # |X|^2 without a complex abs
  if power == 2.0:
    return energy
  if power == 1.0:
    return jnp.sqrt(energy)
  return energy ** (power / 2.0)
