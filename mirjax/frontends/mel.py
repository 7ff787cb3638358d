"""The fixed log-mel front-end: (batch, time) audio -> (batch, frames, n_mels) log power."""
import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from mirjax.audio import mel as mel_lib, spectral


class LogMel(nn.Module):
  """Log-mel spectrogram with no learnable parameters.

  Frame ``i`` is a periodic-Hann-windowed ``n_fft`` excerpt centred at sample ``i * hop``
  (zeros outside the signal), for every centre inside the signal, so
  ``frames = ceil(time / hop)`` for any ``time >= 1``. Its power spectrum goes through a
  Slaney-normalised mel filter bank (librosa's ``filters.mel``) and is compressed as
  ``10 log10(mel + log_offset)`` dB: smooth, and without per-clip ``top_db`` clipping, so
  every frame depends on its own samples only.

  Attributes
  ----------
  sample_rate : int, Hz (default 16000)
  n_fft : int, FFT and window size in samples (default 512)
  hop : int, samples between frame centres (default 256)
  n_mels : int, number of mel bands (default 128)
  fmin, fmax : float, lowest and highest filter corners in Hz (defaults 0 and 8000)
  log_offset : float > 0, added to the mel power before the log (default 1e-6)
  """
  sample_rate: int = 16000
  n_fft: int = 512
  hop: int = 256
  n_mels: int = 128
  fmin: float = 0.0
  fmax: float = 8000.0
  log_offset: float = 1e-6

  @nn.compact
  def __call__(self, audio, train: bool = False):
    """(batch, time) float32 audio -> (batch, ceil(time / hop), n_mels) float32 dB."""
    del train  # nothing stochastic or learnable
    audio = spectral.as_float(audio)
    time = audio.shape[-1]
    n_frames = -(-time // self.hop)
    # Zero-pad n_fft // 2 in front, then pad or crop the end so exactly n_frames fit.
    right = (n_frames - 1) * self.hop + self.n_fft - self.n_fft // 2 - time
    audio = jnp.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(self.n_fft // 2, max(right, 0))])
    audio = audio[..., :(n_frames - 1) * self.hop + self.n_fft]
    mel = mel_lib.melspectrogram(audio, sr=self.sample_rate, n_fft=self.n_fft,
                                 hop_length=self.hop, n_mels=self.n_mels, fmin=self.fmin,
                                 fmax=self.fmax, center=False)
    return 10.0 * jnp.log10(mel + self.log_offset)  # dB of power, offset keeps it smooth

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    """The mel triangles on ``n_freqs`` frequencies evenly spaced from 0 to sr / 2.

    Returns
    -------
    {"filterbank": {"freqs_hz": (n_freqs,), "magnitude": (n_mels, n_freqs)}}, numpy float32
    """
    freqs = np.linspace(0.0, self.sample_rate / 2.0, n_freqs)
    mags = mel_lib.mel_filters_at(freqs, sr=self.sample_rate, n_mels=self.n_mels,
                                  fmin=self.fmin, fmax=self.fmax)
    return {"filterbank": {"freqs_hz": freqs.astype(np.float32),
                           "magnitude": mags.astype(np.float32)}}
