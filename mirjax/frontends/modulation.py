"""Temporal-modulation front-ends ModNet and SincModNet (Ma & Stern, "Learnable front-ends
based on temporal modulation for music tagging", arXiv:2105.11836).

Both compute band envelopes with a first-stage filter bank (ModNet: a fixed mel bank on an
STFT; SincModNet: the learnable SincNet bank), compress them, and pass every band's
envelope through the same bank of K learnable FIR band-pass filters in the modulation
domain ("analogous to a modulation filter bank, where the FIR filter center frequencies
are learned"). The modulation filters are Hamming-windowed sinc band-passes (the SincNet
formula at the envelope rate) with a learnable centre frequency and bandwidth each; their
outputs are taken at a stride, giving (batch, frames, n_bands, K).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mirjax.audio import mel, spectral
from mirjax.frontends import raw, sinc


class _ModulationFrontend(nn.Module):
  """Shared modulation stage; subclasses provide ``envelopes`` and ``bank_responses``.

  Attributes (shared)
  -------------------
  sample_rate : int, Hz (default 16000)
  hop : int, samples per output frame (default 256)
  env_hop : int, samples per envelope value; must divide ``hop`` (default 64: 250 Hz)
  n_mod : int, number K of modulation filters (default 8)
  mod_kernel_s : float, modulation filter length in seconds, rounded to an odd number of
    envelope values (default 0.25). Its Hamming main lobe is about 4 / mod_kernel_s Hz wide
    (16 Hz at 0.25 s), so filters centred below that act as smoothing low-passes.
  mod_fmin_hz, mod_fmax_hz : float, initial modulation band edges are geometrically
    spaced from fmin to fmax (defaults 0.5 and 30.0)
  min_mod_band_hz : float, smallest modulation bandwidth in Hz (default 0.25)
  mod_scale_hz : float, unit of the stored modulation parameters in Hz (default 10.0)
  compression : "log", "power" or "none" envelope compression (default "log")
  eps : float, added before compression (default 1e-5)
  """
  sample_rate: int = 16000
  hop: int = 256
  env_hop: int = 64
  n_mod: int = 8
  mod_kernel_s: float = 0.25
  mod_fmin_hz: float = 0.5
  mod_fmax_hz: float = 30.0
  min_mod_band_hz: float = 0.25
  mod_scale_hz: float = 10.0
  compression: str = "log"
  eps: float = 1e-5

  @property
  def env_rate(self):
    """Envelope sampling rate in Hz."""
    return self.sample_rate / self.env_hop

  @property
  def mod_kernel_size(self):
    """Modulation filter length in envelope values (odd)."""
    return int(round(self.mod_kernel_s * self.env_rate)) // 2 * 2 + 1

  def setup_modulation(self):
    """Declare the modulation parameters: centre and bandwidth per filter."""
    if self.hop % self.env_hop:
      raise ValueError(f"env_hop {self.env_hop} must divide hop {self.hop}")
    edges = np.geomspace(self.mod_fmin_hz, self.mod_fmax_hz, self.n_mod + 1)
    centre = (edges[:-1] + edges[1:]) / 2.0
    band = np.maximum(np.diff(edges) - self.min_mod_band_hz, 1e-3)
    self.mod_centre = self.param(
        "mod_centre_hz", lambda _: jnp.asarray(centre / self.mod_scale_hz, jnp.float32))
    self.mod_band = self.param(
        "mod_band_hz", lambda _: jnp.asarray(band / self.mod_scale_hz, jnp.float32))

  def modulation_bands(self):
    """Current modulation (centre_hz, band_hz), each (n_mod,)."""
    centre = jnp.clip(jnp.abs(self.mod_centre) * self.mod_scale_hz, 0.0, self.env_rate / 2.0)
    return centre, self.min_mod_band_hz + jnp.abs(self.mod_band) * self.mod_scale_hz

  def modulation_kernels(self):
    """(n_mod, mod_kernel_size) windowed sinc band-passes at the envelope rate."""
    centre, band = self.modulation_bands()
    # Same band-pass as SincNet with f1 = fc - b / 2 (a negative f1 gives a low-pass).
    return sinc.sinc_filterbank(centre - band / 2.0, band, self.mod_kernel_size, self.env_rate)

  def __call__(self, audio, train: bool = False):
    """audio (batch, time) float32 -> (batch, ceil(time / hop), n_bands, n_mod)."""
    del train
    frames = raw.n_frames(audio.shape[-1], self.hop)
    factor = self.hop // self.env_hop
    env = sinc.compress(self.envelopes(audio, frames * factor), self.compression, self.eps)
    b, _, n_bands = env.shape
    # Every band's envelope through the same K filters: bands go to the batch axis (NWC).
    x = jnp.transpose(env, (0, 2, 1)).reshape(b * n_bands, -1, 1)
    size = self.mod_kernel_size
    x = raw.pad_for_frames(x, frames, factor, size, mode="edge")  # edge: no log(eps) cliffs
    kernel = self.modulation_kernels().T[:, None, :]  # (taps, 1, n_mod): WIO
    y = jax.lax.conv_general_dilated(x, kernel, (factor,), "VALID",
                                     dimension_numbers=raw.NWC)
    return jnp.transpose(y.reshape(b, n_bands, frames, self.n_mod), (0, 2, 1, 3))

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    """``{"filterbank": ..., "modulation": ...}``: the first-stage bank's magnitude
    responses (0 to sample_rate / 2) and |DTFT| of the current modulation filters
    (0 to env_rate / 2), each ``{"freqs_hz": (n_freqs,), "magnitude": (n, n_freqs)}``."""
    freqs, mag = raw.fir_magnitude_response(self.modulation_kernels(), n_freqs, self.env_rate)
    return {"filterbank": self.bank_responses(n_freqs),
            "modulation": {"freqs_hz": freqs, "magnitude": mag}}


class ModNet(_ModulationFrontend):
  """ModNet (Ma & Stern): fixed mel band envelopes + learnable modulation filter bank.

  Band envelopes: magnitude STFT (periodic Hann window of ``n_fft`` samples, one frame
  every ``env_hop`` samples) times a mel filter bank (Slaney scale, triangles peaking at
  1), compressed; then the shared modulation stage (see `_ModulationFrontend` for its
  fields). Only the modulation filters are learned.

  Padding: the audio is zero-padded by ``n_fft // 2`` on the left and as needed on
  the right so envelope value ``i`` is centred on sample ``i * env_hop``; the envelope is
  edge-padded by half a modulation filter so output frame ``t`` is centred on sample
  ``t * hop``; frames = ceil(time / hop).

  Attributes (besides the shared ones)
  ------------------------------------
  n_bands : int, number of mel bands (default 40)
  n_fft : int, STFT window and FFT size in samples (default 512)
  fmin, fmax : float, mel bank range in Hz (defaults 0.0 and 8000.0)

  Returns from ``__call__``: (batch, ceil(time / hop), n_bands, n_mod) float32.
  """
  n_bands: int = 40
  n_fft: int = 512
  fmin: float = 0.0
  fmax: float = 8000.0

  def setup(self):
    self.setup_modulation()

  def envelopes(self, audio, n_env):
    """(batch, time) -> mel band magnitudes (batch, n_env, n_bands) at ``env_rate``."""
    x = raw.pad_for_frames(audio, n_env, self.env_hop, self.n_fft)
    spec = spectral.spectrogram(x, self.n_fft, self.env_hop, None, "hann", False, "constant",
                                power=1.0)
    weights = mel.mel_filterbank(sr=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_bands,
                                 fmin=self.fmin, fmax=self.fmax, norm=None)
    return spec @ weights.T

  def bank_responses(self, n_freqs):
    """The mel triangles on ``linspace(0, sample_rate / 2, n_freqs)``."""
    freqs = np.linspace(0.0, self.sample_rate / 2.0, n_freqs)
    mag = mel.mel_filters_at(freqs, sr=self.sample_rate, n_mels=self.n_bands, fmin=self.fmin,
                             fmax=self.fmax, norm=None)
    return {"freqs_hz": jnp.asarray(freqs, jnp.float32), "magnitude": jnp.asarray(mag, jnp.float32)}


class SincModNet(_ModulationFrontend):
  """SincModNet (Ma & Stern): learnable SincNet band envelopes + modulation filter bank.

  Band envelopes: the magnitude of the analytic sinc band-passes (`sinc.sinc_envelopes`)
  evaluated every ``stride`` samples, averaged down to one value per ``env_hop`` samples,
  compressed; then the shared modulation stage (see `_ModulationFrontend`). Both the sinc
  cut-offs (SincNet's parameterisation, mel-spaced at init) and the modulation filters
  are learned.

  Padding: zeros, ``kernel_size // 2`` on the left and as needed on the right of
  the audio; the envelope is edge-padded by half a modulation filter; frames =
  ceil(time / hop).

  Attributes (besides the shared ones)
  ------------------------------------
  n_bands : int, number of sinc band-pass filters (default 40)
  kernel_size : int, sinc filter length in samples, odd (default 251)
  stride : int, samples between envelope evaluations; must divide ``env_hop`` (default 16)
  min_low_hz, min_band_hz : float, SincNet constraints in Hz (defaults 50.0, 50.0)
  scale_hz : float, unit of the stored sinc parameters in Hz (default 1000.0)

  Returns from ``__call__``: (batch, ceil(time / hop), n_bands, n_mod) float32.
  """
  n_bands: int = 40
  kernel_size: int = 251
  stride: int = 16
  min_low_hz: float = 50.0
  min_band_hz: float = 50.0
  scale_hz: float = 1000.0

  def setup(self):
    if self.env_hop % self.stride:
      raise ValueError(f"stride {self.stride} must divide env_hop {self.env_hop}")
    low, band = sinc.mel_spaced_bands(self.n_bands, self.sample_rate, self.min_low_hz,
                                      self.min_band_hz)
    self.low_param = self.param("low_hz", lambda _: jnp.asarray(low / self.scale_hz))
    self.band_param = self.param("band_hz", lambda _: jnp.asarray(band / self.scale_hz))
    self.setup_modulation()

  def bands(self):
    """Current sinc (low_hz, band_hz), each (n_bands,), after SincNet's constraints."""
    return sinc.constrained_bands(self.low_param, self.band_param, self.scale_hz,
                                  self.min_low_hz, self.min_band_hz, self.sample_rate / 2.0)

  def envelopes(self, audio, n_env):
    """(batch, time) -> sinc band envelopes (batch, n_env, n_bands) at ``env_rate``."""
    factor = self.env_hop // self.stride
    low, band = self.bands()
    env = sinc.sinc_envelopes(audio, low, band, kernel_size=self.kernel_size,
                              sample_rate=self.sample_rate, stride=self.stride,
                              n_out=n_env * factor)
    return sinc.avg_pool_time(env, factor)

  def bank_responses(self, n_freqs):
    """|DTFT| of the current sinc band-passes on ``linspace(0, sample_rate / 2, n_freqs)``."""
    low, band = self.bands()
    kernels = sinc.sinc_filterbank(low, band, self.kernel_size, self.sample_rate)
    freqs, mag = raw.fir_magnitude_response(kernels, n_freqs, self.sample_rate)
    return {"freqs_hz": freqs, "magnitude": mag}
