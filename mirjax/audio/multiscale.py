"""Multiscale time-frequency representations, as "Multiscale approaches to music audio
feature learning" (Dieleman & Schrauwen, ISMIR 2013) compares them: multiresolution
spectrograms, and Gaussian and Laplacian pyramids of one log-mel spectrogram.

Every level is time-major, (..., frames, bins). Multiresolution spectrograms share one
frame grid (centred frames, one hop) and differ in window size; pyramid level l has
ceil(frames / 2^l) frames, so its frames span 2^l times the time of level 0's.
"""
import jax.numpy as jnp
import numpy as np

from mirjax.audio import mel


def log_compress(S, c: float = 1e4):
  """log(1 + c S): the compression of a magnitude or power spectrogram, finite at 0."""
  return jnp.log1p(c * S)


def multires_spectrograms(x, *, sr, n_ffts=(1024, 2048, 4096), hop_length=512, n_mels=128,
                          compression: float = 1e4, fmin=0.0, fmax=None):
  """Log-mel spectrograms of several window sizes on one frame grid.

  Parameters
  ----------
  x : array (..., n_samples), audio at ``sr`` Hz
  n_ffts : window (and FFT) sizes in samples, one level each, e.g. 1024/2048/4096 at 16 kHz
  hop_length : samples between frames, shared by every level (frames are centred, so every
    level has 1 + n_samples // hop_length frames)
  n_mels, fmin, fmax : the mel filter bank of every level (see `mel.mel_filterbank`)
  compression : c of log(1 + c M) applied to the mel power M

  Returns
  -------
  list of float32 arrays (..., frames, n_mels), one per window size
  """
  return [log_compress(mel.melspectrogram(x, sr=sr, n_fft=int(n), hop_length=hop_length, n_mels=n_mels,
                                          fmin=fmin, fmax=fmax), compression)
          for n in n_ffts]


# Burt & Adelson's generating kernel with a = 0.375 ("The Laplacian Pyramid as a Compact Image
# Code", 1983): a 5-tap binomial approximation of a Gaussian (sigma about 1 frame) whose even
# and odd taps each sum to 1/2, so EXPAND keeps constants and straight lines exactly.
BURT_ADELSON = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def smooth_time(S, kernel):
  """S (..., frames, bins) convolved with the symmetric `kernel` along frames, the edges
  extended by mirroring with the edge frame repeated (scipy.ndimage's mode "reflect")."""
  r = len(kernel) // 2
  pad = [(0, 0)] * (S.ndim - 2) + [(r, r), (0, 0)]
  padded = jnp.pad(S, pad, mode="symmetric") if r else S
  n = S.shape[-2]
  return sum(float(w) * padded[..., i:i + n, :] for i, w in enumerate(kernel))


def gaussian_pyramid(S, levels: int = 4, kernel=BURT_ADELSON):
  """[G_0, ..., G_{levels-1}]: G_0 = S, G_{l+1} = the even frames of G_l smoothed along time
  (Burt & Adelson's REDUCE: the Gaussian-like low-pass `kernel`, then 2x downsampling).

  S : (..., frames, bins), e.g. a log-mel spectrogram; G_l has ceil(frames / 2^l) frames.
  """
  out = [S]
  for _ in range(levels - 1):
    out.append(smooth_time(out[-1], kernel)[..., ::2, :])
  return out


def expand_time(G, frames: int, kernel=BURT_ADELSON):
  """Burt & Adelson's EXPAND: G (..., n, bins) to (..., frames, bins), frames in {2n - 1, 2n}:
  zeros inserted after every frame, cut to `frames`, then smoothed with twice the taps of
  `kernel` (the zeros halve the mean)."""
  up = jnp.zeros(G.shape[:-2] + (2 * G.shape[-2], G.shape[-1]), G.dtype).at[..., ::2, :].set(G)
  return smooth_time(up[..., :frames, :], [2.0 * w for w in kernel])


def laplacian_pyramid(S, levels: int = 4, kernel=BURT_ADELSON):
  """[L_0, ..., L_{levels-1}]: L_l = G_l - EXPAND(G_{l+1}) for l < levels - 1 and the top
  L_{levels-1} = G_{levels-1} (Burt & Adelson 1983), so `collapse_laplacian` gives S back.
  L_l has the frames of G_l."""
  g = gaussian_pyramid(S, levels, kernel)
  return [g[l] - expand_time(g[l + 1], g[l].shape[-2], kernel) for l in range(levels - 1)] + [g[-1]]


def collapse_laplacian(L, kernel=BURT_ADELSON):
  """The signal a Laplacian pyramid came from: G_l = L_l + EXPAND(G_{l+1}) from the top down."""
  g = L[-1]
  for level in reversed(L[:-1]):
    g = level + expand_time(g, level.shape[-2], kernel)
  return g


REPRESENTATIONS = ("multires", "gaussian", "laplacian")


def representation(x, name: str, *, sr, n_ffts=(1024, 2048, 4096), hop_length=512, n_mels=128,
                   levels: int = 4, compression: float = 1e4, fmin=0.0, fmax=None):
  """The levels of one of REPRESENTATIONS for audio x (..., n_samples): "multires" (one
  level per window size of `n_ffts`), or a "gaussian" / "laplacian" pyramid of `levels`
  levels of the log-mel spectrogram with window n_ffts[0]."""
  if name == "multires":
    return multires_spectrograms(x, sr=sr, n_ffts=n_ffts, hop_length=hop_length, n_mels=n_mels,
                                 compression=compression, fmin=fmin, fmax=fmax)
  if name not in REPRESENTATIONS:
    raise ValueError(f"unknown representation {name!r}; choose one of {REPRESENTATIONS}")
  (S,) = multires_spectrograms(x, sr=sr, n_ffts=n_ffts[:1], hop_length=hop_length, n_mels=n_mels,
                               compression=compression, fmin=fmin, fmax=fmax)
  return (gaussian_pyramid if name == "gaussian" else laplacian_pyramid)(S, levels)
