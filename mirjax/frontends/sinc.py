"""SincNet learnable band-pass filter bank (Ravanelli & Bengio, "Speaker recognition from
raw waveform with SincNet", SLT 2018).

Each filter is a band-pass whose only parameters are its low cut-off f1 and bandwidth;
the impulse response is the difference of two ideal low-passes (their eq. 4-5),

  g[n] = 2 f2 sinc(2 pi f2 n) - 2 f1 sinc(2 pi f1 n),   sinc(x) = sin(x) / x,

times a Hamming window, with f in cycles per sample. The same filter is
``2 b sinc(pi b n) cos(2 pi fc n)`` (b = f2 - f1, fc = (f1 + f2) / 2); replacing cos by
sin gives its quadrature partner, and the pair is an analytic band-pass whose magnitude
is the band envelope. The front-end uses that pair, evaluated at a stride.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mirjax.audio import mel
from mirjax.frontends import raw
from mirjax.errors import ConfigError


def _hamming(kernel_size):
  """Symmetric Hamming window 0.54 - 0.46 cos(2 pi k / (K - 1)) (Ravanelli & Bengio eq. 6)."""
  return jnp.asarray(np.hamming(kernel_size), jnp.float32)


def _taps(kernel_size):
  """Tap times n = -(K - 1) / 2 ... (K - 1) / 2 in samples, centred on the filter middle."""
  return jnp.arange(kernel_size, dtype=jnp.float32) - (kernel_size - 1) / 2.0


def sinc_filterbank(low_hz, band_hz, kernel_size, sample_rate, window=None):
  """Hamming-windowed sinc band-pass filters (Ravanelli & Bengio 2018, eq. 4-6).

  ``h[n] = (2 f2 sinc(2 pi f2 n) - 2 f1 sinc(2 pi f1 n)) w[n]`` with ``f1 = low_hz / sr``,
  ``f2 = (low_hz + band_hz) / sr``, ``sinc(x) = sin(x) / x`` and ``w`` the symmetric
  Hamming window; the pass-band gain is about 1 (the ideal band-pass has gain exactly 1).

  Parameters
  ----------
  low_hz : array, shape (n_filters,), low cut-off f1 in Hz
  band_hz : array, shape (n_filters,), bandwidth f2 - f1 in Hz
  kernel_size : int, filter length in samples (odd keeps the filter centred on a tap)
  sample_rate : float, Hz
  window : array (kernel_size,) or (n_filters, kernel_size), or None for the symmetric
    Hamming window of the whole length (default)

  Returns
  -------
  float32 array, shape (n_filters, kernel_size)
  """
  n = _taps(kernel_size)[None, :]
  f1 = jnp.asarray(low_hz, jnp.float32)[:, None] / sample_rate
  f2 = f1 + jnp.asarray(band_hz, jnp.float32)[:, None] / sample_rate
  # jnp.sinc(x) = sin(pi x) / (pi x), so 2 f sinc_paper(2 pi f n) = 2 f jnp.sinc(2 f n).
  g = 2.0 * f2 * jnp.sinc(2.0 * f2 * n) - 2.0 * f1 * jnp.sinc(2.0 * f1 * n)  # eq. 4
  return g * (_hamming(kernel_size) if window is None else jnp.asarray(window, jnp.float32))  # eq. 5-6


def analytic_sinc_filterbank(low_hz, band_hz, kernel_size, sample_rate):
  """In-phase and quadrature parts of the analytic form of `sinc_filterbank`.

  ``h_I[n] = 2 b sinc(pi b n) cos(2 pi fc n) w[n]`` equals `sinc_filterbank`;
  ``h_Q[n] = 2 b sinc(pi b n) sin(2 pi fc n) w[n]`` is its quadrature partner, so for a
  sinusoid inside the band ``sqrt(y_I^2 + y_Q^2)`` is its amplitude (the band envelope).

  Parameters: as `sinc_filterbank`.

  Returns
  -------
  (h_I, h_Q), each float32 of shape (n_filters, kernel_size)
  """
  n = _taps(kernel_size)[None, :]
  b = jnp.asarray(band_hz, jnp.float32)[:, None] / sample_rate
  fc = jnp.asarray(low_hz, jnp.float32)[:, None] / sample_rate + b / 2.0
  lowpass = 2.0 * b * jnp.sinc(b * n) * _hamming(kernel_size)  # half-band low-pass, x2
  return lowpass * jnp.cos(2.0 * jnp.pi * fc * n), lowpass * jnp.sin(2.0 * jnp.pi * fc * n)


def mel_spaced_bands(n_filters, sample_rate, min_low_hz, min_band_hz):
  """Initial (low_hz, band_hz) of SincNet: edges equally spaced on the HTK mel scale.

  Edges run from 30 Hz to ``sr / 2 - (min_low_hz + min_band_hz)`` so that, after the
  ``min_*`` offsets of `constrained_bands`, the highest band ends at about Nyquist.

  Returns
  -------
  (low_hz, band_hz) numpy float32 arrays of shape (n_filters,), before the min offsets
  """
  top = sample_rate / 2.0 - (min_low_hz + min_band_hz)
  mels = np.linspace(mel.hz_to_mel(30.0, htk=True), mel.hz_to_mel(top, htk=True), n_filters + 1)
  edges = mel.mel_to_hz(mels, htk=True)
  return edges[:-1].astype(np.float32), np.diff(edges).astype(np.float32)


def constrained_bands(low_param, band_param, scale_hz, min_low_hz, min_band_hz, max_hz):
  """SincNet's constraint: f1 = min_low + |theta_1|, f2 = clip(f1 + min_band + |theta_b|).

  ``theta`` are stored in units of ``scale_hz`` Hz (so an optimiser step of size lr moves
  a cut-off by about lr * scale_hz Hz). Returns (low_hz, band_hz) with f2 <= ``max_hz``.
  """
  low = min_low_hz + jnp.abs(low_param) * scale_hz
  high = jnp.clip(low + min_band_hz + jnp.abs(band_param) * scale_hz, min_low_hz, max_hz)
  return low, high - low


def compress(x, kind, eps=1e-5, exponent=0.3):
  """Envelope compression: "log" ``log(x + eps)``, "power" ``(x + eps) ** exponent``,
  or "none"."""
  if kind == "log":
    return jnp.log(x + eps)
  if kind == "power":
    return (x + eps) ** exponent
  if kind == "none":
    return x
  raise ConfigError(f"compression must be 'log', 'power' or 'none', got {kind!r}")


def avg_pool_time(x, factor):
  """Mean over non-overlapping groups of ``factor`` frames on axis 1 (length divisible)."""
  if factor == 1:
    return x
  b, t = x.shape[:2]
  return x.reshape((b, t // factor, factor) + x.shape[2:]).mean(axis=2)


def sinc_envelopes(audio, low_hz, band_hz, *, kernel_size, sample_rate, stride, n_out):
  """Band envelopes |analytic sinc band-pass| of raw audio at a stride.

  Parameters
  ----------
  audio : (batch, time) float32
  low_hz, band_hz : (n_filters,) Hz, see `sinc_filterbank`
  kernel_size, sample_rate : see `sinc_filterbank`
  stride : int, samples between envelope values
  n_out : int, number of envelope values; value ``i`` is centred on sample ``i * stride``
    (zeros pad the audio, see `raw.pad_for_frames`)

  Returns
  -------
  (batch, n_out, n_filters) float32, non-negative
  """
  h_i, h_q = analytic_sinc_filterbank(low_hz, band_hz, kernel_size, sample_rate)
  kernel = jnp.concatenate([h_i, h_q], axis=0).T[:, None, :]  # (taps, 1, 2 * filters): WIO
  x = raw.pad_for_frames(audio[..., None], n_out, stride, kernel_size)
  y = jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), (stride,), "VALID",
                                   dimension_numbers=raw.NWC)  # the input's precision
  y_i, y_q = jnp.split(y, 2, axis=-1)
  return jnp.sqrt(y_i ** 2 + y_q ** 2 + 1e-12)  # analytic magnitude; 1e-12 keeps sqrt' finite


class SincNet(nn.Module):
  """SincNet filter bank as a front-end: learnable band-passes -> envelopes -> log.

  Pipeline: the analytic form of each sinc band-pass (see `analytic_sinc_filterbank`) is
  convolved with the audio at a stride of ``stride`` samples (never at full rate), its
  magnitude (the band envelope) is averaged over ``hop / stride`` values, then compressed
  (``log(x + eps)`` by default). The parameters are SincNet's: low cut-off and bandwidth
  per filter, constrained by ``min_low_hz`` / ``min_band_hz`` and initialised mel-spaced.

  Padding: zeros, ``kernel_size // 2`` on the left and as needed on the right, so
  frames = ceil(time / hop); frame ``t`` averages the envelope over samples
  ``[t * hop, (t + 1) * hop)``.

  Attributes
  ----------
  sample_rate : int, Hz (default 16000)
  n_filters : int, number of band-pass filters = output features (default 64)
  kernel_size : int, filter length in samples, odd (default 251, as the paper at 16 kHz)
  stride : int, samples between envelope evaluations; must divide ``hop`` (default 16: the
    magnitude at each evaluated sample is exact, only the average uses fewer samples; 16
    trains ~4x faster than 8 on a CPU)
  hop : int, samples per output frame (default 256)
  min_low_hz : float, lowest allowed low cut-off in Hz (default 50.0, as the paper)
  min_band_hz : float, smallest allowed bandwidth in Hz (default 50.0, as the paper)
  scale_hz : float, the unit of the stored parameters in Hz (default 1000.0)
  compression : "log", "power" or "none" (default "log"), see `compress`
  eps : float, added before log / power compression (default 1e-5)

  Returns from ``__call__``: (batch, ceil(time / hop), n_filters) float32.
  """
  sample_rate: int = 16000
  n_filters: int = 64
  kernel_size: int = 251
  stride: int = 16
  hop: int = 256
  min_low_hz: float = 50.0
  min_band_hz: float = 50.0
  scale_hz: float = 1000.0
  compression: str = "log"
  eps: float = 1e-5

  def setup(self):
    if self.hop % self.stride:
      raise ConfigError(f"stride {self.stride} must divide hop {self.hop}")
    low, band = mel_spaced_bands(self.n_filters, self.sample_rate, self.min_low_hz,
                                 self.min_band_hz)
    self.low_param = self.param("low_hz", lambda _: jnp.asarray(low / self.scale_hz))
    self.band_param = self.param("band_hz", lambda _: jnp.asarray(band / self.scale_hz))

  def bands(self):
    """Current (low_hz, band_hz), each (n_filters,), after SincNet's constraints."""
    return constrained_bands(self.low_param, self.band_param, self.scale_hz, self.min_low_hz,
                             self.min_band_hz, self.sample_rate / 2.0)

  def __call__(self, audio, train: bool = False):
    """audio (batch, time) float32 -> (batch, ceil(time / hop), n_filters)."""
    del train
    frames = raw.n_frames(audio.shape[-1], self.hop)
    factor = self.hop // self.stride
    low, band = self.bands()
    env = sinc_envelopes(audio, low, band, kernel_size=self.kernel_size,
                         sample_rate=self.sample_rate, stride=self.stride, n_out=frames * factor)
    # Envelope value i is centred on sample i * stride, so frame t covers [t hop, (t+1) hop).
    return compress(avg_pool_time(env, factor), self.compression, self.eps)

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    """``{"filterbank": {"freqs_hz", "magnitude": (n_filters, n_freqs)}}``: |DTFT| of the
    current windowed sinc band-passes, 0 to sample_rate / 2."""
    low, band = self.bands()
    kernels = sinc_filterbank(low, band, self.kernel_size, self.sample_rate)
    freqs, mag = raw.fir_magnitude_response(kernels, n_freqs, self.sample_rate)
    return {"filterbank": {"freqs_hz": freqs, "magnitude": mag}}
