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
