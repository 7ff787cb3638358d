"""Fixed time-frequency front-ends used as views of a multi-view model: MFCC, gammatone,
constant-Q and chroma (log-mel is `mel.LogMel`). None has learnable parameters.

All follow the front-end contract: (batch, time) float32 audio -> (batch, frames, features)
with frames = ceil(time / hop): frame ``i`` is centred on sample ``i * hop`` (zero padding
outside the signal, as librosa's ``center=True``), and the centred framing's extra last
frame is dropped when ``time`` is a multiple of ``hop``. Log outputs are
``10 log10(power + offset)`` dB, smooth and without per-clip clipping.
"""
import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from mirjax import audio as dsp
from mirjax.audio import mel as mel_lib
from mirjax.frontends import raw


def _db(power, offset):
  return 10.0 * jnp.log10(power + offset)  # dB of power; the offset keeps it smooth at 0


class MFCC(nn.Module):
  """Mel-frequency cepstral coefficients: the DCT-II (orthonormal) of the log-mel spectrum.

  Attributes
  ----------
  sample_rate : int, Hz (default 16000)
  hop : int, samples between frames (default 256)
  n_fft : int, window and FFT size in samples (default 512)
  n_mels : int, mel bands before the DCT (default 96)
  n_mfcc : int, coefficients kept = output features (default 20)
  fmin, fmax : float, mel bank range in Hz (defaults 0 and 8000)
  log_offset : float, added to the mel power before the log (default 1e-6)
  """
  sample_rate: int = 16000
  hop: int = 256
  n_fft: int = 512
  n_mels: int = 96
  n_mfcc: int = 20
  fmin: float = 0.0
  fmax: float = 8000.0
  log_offset: float = 1e-6

  @nn.compact
  def __call__(self, audio, train: bool = False):
    del train
    mel = mel_lib.melspectrogram(audio, sr=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop,
                                 n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax)
    coeffs = dsp.dct(_db(mel, self.log_offset), n=self.n_mfcc)
    return coeffs[:, :raw.n_frames(audio.shape[-1], self.hop)]

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    """The mel filters under the DCT, on ``linspace(0, sample_rate / 2, n_freqs)``."""
    freqs = np.linspace(0.0, self.sample_rate / 2.0, n_freqs)
    mags = mel_lib.mel_filters_at(freqs, sr=self.sample_rate, n_mels=self.n_mels, fmin=self.fmin,
                                  fmax=self.fmax)
    return {"filterbank": {"freqs_hz": freqs.astype(np.float32), "magnitude": mags.astype(np.float32)}}


class Gammatone(nn.Module):
  """Log gammatone spectrogram: STFT power through an ERB-spaced 4th-order gammatone bank
  (Glasberg & Moore 1990; Patterson et al. 1992), in dB.

  Attributes
  ----------
  sample_rate : int, Hz (default 16000)
  hop : int, samples between frames (default 256)
  n_fft : int, window and FFT size in samples (default 512)
  n_bands : int, gammatone filters = output features (default 64)
  fmin, fmax : float, lowest and highest centre frequency in Hz (defaults 50 and 8000)
  log_offset : float, added to the band power before the log (default 1e-6)
  """
  sample_rate: int = 16000
  hop: int = 256
  n_fft: int = 512
  n_bands: int = 64
  fmin: float = 50.0
  fmax: float = 8000.0
  log_offset: float = 1e-6

  @nn.compact
  def __call__(self, audio, train: bool = False):
    del train
    power = dsp.gammatone_spectrogram(audio, sr=self.sample_rate, n_fft=self.n_fft,
                                      hop_length=self.hop, n_bands=self.n_bands, fmin=self.fmin,
                                      fmax=self.fmax)
    return _db(power, self.log_offset)[:, :raw.n_frames(audio.shape[-1], self.hop)]

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    """|H(f)| of the gammatone filters on ``linspace(0, sample_rate / 2, n_freqs)``."""
    from mirjax.audio import gammatone  # pylint: disable=import-outside-toplevel
    freqs = np.linspace(0.0, self.sample_rate / 2.0, n_freqs)
    mags = gammatone.gammatone_response(
        freqs, gammatone.gammatone_frequencies(self.n_bands, self.fmin, self.fmax))
    return {"filterbank": {"freqs_hz": freqs.astype(np.float32), "magnitude": mags.astype(np.float32)}}


class CQT(nn.Module):
  """Log-magnitude constant-Q transform (`mirjax.audio.cqt`), in dB of power.

  Attributes
  ----------
  sample_rate : int, Hz (default 16000)
  hop : int, samples between frames (default 256)
  fmin : float, lowest bin in Hz (default 32.70: C1)
  n_bins, bins_per_octave : int, output features and their resolution (defaults 84, 12)
  log_offset : float, added to the power before the log (default 1e-6)
  """
  sample_rate: int = 16000
  hop: int = 256
  fmin: float = 32.70319566257483
  n_bins: int = 84
  bins_per_octave: int = 12
  log_offset: float = 1e-6

  @nn.compact
  def __call__(self, audio, train: bool = False):
    del train
    c = dsp.cqt(audio, sr=self.sample_rate, hop_length=self.hop, fmin=self.fmin,
                n_bins=self.n_bins, bins_per_octave=self.bins_per_octave)
    power = jnp.square(c.real) + jnp.square(c.imag)
    return _db(power, self.log_offset)[:, :raw.n_frames(audio.shape[-1], self.hop)]

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    """|kernel spectrum| of each bin, interpolated on ``linspace(0, sample_rate / 2, n_freqs)``."""
    octaves, _ = dsp.cqt_filterbank(sr=self.sample_rate, fmin=float(self.fmin),
                                    n_bins=self.n_bins, bins_per_octave=self.bins_per_octave,
                                    sparsity=0.0, hop_length=self.hop)
    freqs = np.linspace(0.0, self.sample_rate / 2.0, n_freqs)
    rows = {}
    for bins, decimation, basis, n_fft in octaves:  # each octave's kernels at its own rate
      grid = np.linspace(0.0, self.sample_rate / 2.0 / decimation, n_fft // 2 + 1)
      for k, row in zip(bins, basis):
        rows[k] = np.interp(freqs, grid, np.abs(row), right=0.0)
    mags = np.stack([rows[k] for k in sorted(rows)])
    return {"filterbank": {"freqs_hz": freqs.astype(np.float32), "magnitude": mags.astype(np.float32)}}


class Chroma(nn.Module):
  """Chromagram (`mirjax.audio.chroma_stft`): pitch-class energy, each frame divided by its max.

  Attributes
  ----------
  sample_rate : int, Hz (default 16000)
  hop : int, samples between frames (default 256)
  n_fft : int, window and FFT size in samples (default 2048: 7.8 Hz bins, enough for bass notes)
  n_chroma : int, output features (default 12)
  """
  sample_rate: int = 16000
  hop: int = 256
  n_fft: int = 2048
  n_chroma: int = 12

  @nn.compact
  def __call__(self, audio, train: bool = False):
    del train
    c = dsp.chroma_stft(audio, sr=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop,
                        n_chroma=self.n_chroma)
    return c[:, :raw.n_frames(audio.shape[-1], self.hop)]

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    """The chroma weights, interpolated on ``linspace(0, sample_rate / 2, n_freqs)``."""
    w = dsp.chroma_filterbank(sr=self.sample_rate, n_fft=self.n_fft, n_chroma=self.n_chroma)
    grid = np.linspace(0.0, self.sample_rate / 2.0, self.n_fft // 2 + 1)
    freqs = np.linspace(0.0, self.sample_rate / 2.0, n_freqs)
    mags = np.stack([np.interp(freqs, grid, row) for row in w])
    return {"filterbank": {"freqs_hz": freqs.astype(np.float32), "magnitude": mags.astype(np.float32)}}
