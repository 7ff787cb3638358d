"""Temporal-modulation front-ends ModNet and SincModNet ("A Modulation Front-End for Music
Audio Tagging", arXiv:2105.11836).

Both compute band envelopes with a first-stage filter bank (ModNet: a fixed mel bank on an
STFT; SincModNet: the learnable SincNet bank), compress them, and pass every band's
envelope through the same bank of K learnable FIR band-pass filters in the modulation
domain (the paper's "temporal modulation processing block", analogous to a modulation
filter bank whose FIR centre frequencies are learned). Outputs are (batch, frames,
n_bands, K): an acoustic-band x modulation-band decomposition over time.

The modulation filters are windowed-sinc band-passes (the SincNet formula at the envelope
rate) with a learnable centre and bandwidth each. A filter resolves a band only if it is
long enough: a Hamming-windowed filter of L seconds cannot tell apart modulation rates
closer than about 2 / L Hz, and one centred below about 1 / L Hz peaks at 0 Hz. So each
filter's length follows its band, ``mod_cycles / bandwidth`` seconds (the lowest, narrowest
bands get the longest filters, at most ``mod_kernel_s``), and the initial bands are never
narrower than the longest filter resolves: constant bandwidth at low rates, constant Q
above, the shape of auditory modulation filter banks. With the defaults (0.5-30 Hz, 8
filters, 3 cycles, 3 s) the edges are 0.5, 1.5, 2.5, 3.78, 5.72, 8.66, 13.1, 19.8 and 30 Hz:
three filters share out the 0.5-4 Hz range of beat and tempo.

Option ``mod_subsample`` (the paper's analysis): every modulation band's output is kept at
a rate proportional to its bandwidth, ``mod_subsample * bandwidth`` Hz (2: the band-pass
sampling limit), and held between samples, so lowering it takes temporal detail away
band by band.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mirjax.audio import mel, spectral
from mirjax.frontends import raw, sinc
from mirjax.errors import ConfigError


def modulation_edges(fmin_hz, fmax_hz, n_filters, min_band_hz):
  """Band edges (n_filters + 1,) from fmin to fmax: each band ``max(min_band, (r - 1) * low)``
  wide, i.e. constant bandwidth up to a knee and constant Q above, with the ratio r found
  by bisection so the last edge is fmax. Raises ValueError when even constant bandwidth
  ``min_band_hz`` overshoots fmax."""
  if n_filters * min_band_hz > fmax_hz - fmin_hz:
    raise ConfigError(
        f"{n_filters} modulation bands of at least {min_band_hz:.3g} Hz do not fit in "
        f"{fmin_hz}-{fmax_hz} Hz: lower n_mod or mod_cycles, or raise mod_kernel_s or mod_fmax_hz")

  def edges(ratio):
    e = [float(fmin_hz)]
    for _ in range(n_filters):
      e.append(max(e[-1] + min_band_hz, e[-1] * ratio))
    return np.array(e)

  lo, hi = 1.0, max(2.0, (fmax_hz / fmin_hz) ** 1.0 + 1.0)
  for _ in range(200):  # the last edge grows with the ratio: bisect it onto fmax
    mid = (lo + hi) / 2.0
    lo, hi = (lo, mid) if edges(mid)[-1] > fmax_hz else (mid, hi)
  out = edges(lo)
  out[-1] = fmax_hz
  return out


def fft_size(n):
  """The smallest 2^a 3^b 5^c >= n (sizes the FFT computes fastest)."""
  best = 1 << max(int(n) - 1, 0).bit_length()
  p5 = 1
  while p5 < best:
    p35 = p5
    while p35 < best:
      m = p35
      while m < n:
        m *= 2
      best, p35 = min(best, m), p35 * 3
    p5 *= 5
  return best


def decimation_size(n, stride):
  """The FFT length of `valid_correlation`: a multiple of ``2 * stride`` >= n whose quotient
  by ``2 * stride`` is a 2^a 3^b 5^c (`fft_size`)."""
  return fft_size(-(-n // (2 * stride))) * 2 * stride


def alias_slices(n, stride):
  """Where the ``stride`` slices ``S[k + j n / stride]``, k = 0 ... n / (2 stride), of the
  full length-n spectrum of a real signal lie in its rfft half (n / 2 + 1 bins): for each j,
  ``(start, mirrored)``: bins start ... start + n / (2 stride) where the index is at most
  n / 2, else (mirrored) the conjugates of those bins in reverse order (S[n - k] = conj(S[k]);
  for every stride no slice straddles n / 2)."""
  q, half = n // (2 * stride), n // 2
  return [(j * n // stride, False) if j * n // stride + q <= half else (n - j * n // stride - q, True)
          for j in range(stride)]


def _aliases(spectrum, n, stride):
  """The slices of `alias_slices` taken from the rfft half ``spectrum`` (..., n / 2 + 1)."""
  q = n // (2 * stride)
  return [jnp.conj(spectrum[..., start:start + q + 1][..., ::-1]) if mirrored
          else spectrum[..., start:start + q + 1] for start, mirrored in alias_slices(n, stride)]


def valid_correlation(x, kernels, stride):
  """``y[r, i, k] = sum_n x[r, i * stride + n] kernels[k, n]`` for every i where the kernel
  fits in x (a VALID, strided cross-correlation, as ``lax.conv_general_dilated`` computes),
  by FFT: one transform of length n >= len(x) per row, so long kernels cost no more than
  short ones. Circular wrap-around only touches outputs that are not VALID.

  Only every ``stride``-th output is kept, so the product of the spectra is folded onto
  n / stride bins before the inverse transform: keeping every s-th sample of a length-n
  sequence averages its spectrum over s shifts of n / s bins (d[i] = y[s i] <=> D[k] =
  (1 / s) sum_j Y[k + j n / s]), which halves the inverse transform at stride 2 and never
  forms the full product.

  Parameters
  ----------
  x : (rows, time) float32
  kernels : (n_kernels, taps) float32, taps <= time
  stride : int

  Returns
  -------
  (rows, (time - taps) // stride + 1, n_kernels) float32
  """
  time, taps = x.shape[-1], kernels.shape[-1]
  n_out = (time - taps) // stride + 1
  front = -(taps - 1) % stride  # zeros in front put the first VALID output on the kept grid
  x = jnp.pad(x, ((0, 0), (front, 0)))
  n = decimation_size(x.shape[-1], stride)
  xs = _aliases(spectral.fft(x, "rfft", n), n, stride)  # rows keep their sharding
  hs = _aliases(jnp.fft.rfft(kernels[:, ::-1], n), n, stride)  # circular convolution with the flip
  folded = sum(a[:, None, :] * h[None] for a, h in zip(xs, hs)) / stride
  kept = spectral.fft(folded, "irfft", n // stride)  # (rows, n_kernels, n / stride): y[stride i]
  first = (taps - 1 + front) // stride
  return jnp.transpose(kept[:, :, first:first + n_out], (0, 2, 1))


def hold_at_rates(y, periods):
  """Keep every ``periods[k]``-th frame of modulation band k of ``y`` (batch, frames,
  n_bands, K) and repeat it until the next kept frame (sample and hold)."""
  frames = y.shape[1]
  out = [jnp.repeat(y[:, ::m, :, k], m, axis=1)[:, :frames] for k, m in enumerate(periods)]
  return jnp.stack(out, axis=-1)


class _ModulationFrontend(nn.Module):
  """Shared modulation stage; subclasses provide ``envelopes`` and ``bank_responses``.

  Attributes (shared)
  -------------------
  sample_rate : int, Hz (default 16000)
  hop : int, samples per output frame (default 256)
  env_hop : int, samples per envelope value; must divide ``hop`` (default 128: 125 Hz)
  n_mod : int, number K of modulation filters (default 8)
  mod_kernel_s : float, length of the longest modulation filter in seconds (default 3.0);
    with ``mod_cycles`` it sets the narrowest initial band, mod_cycles / mod_kernel_s Hz
  mod_cycles : float, each filter is ``mod_cycles / bandwidth`` seconds long (its initial
    bandwidth), rounded to an odd number of envelope values (default 3.0)
  mod_fmin_hz, mod_fmax_hz : float, range of the initial modulation bands (`modulation_edges`;
    defaults 0.5 and 30.0)
  min_mod_band_hz : float, smallest learned modulation bandwidth in Hz (default 0.25)
  mod_scale_hz : float, unit of the stored modulation parameters in Hz (default 10.0)
  mod_subsample : float, 0 (default) keeps every output frame; > 0 keeps band k at
    ``mod_subsample * bandwidth_k`` Hz (initial bandwidth) and holds it in between
  compression : "log", "power" or "none" envelope compression (default "log")
  eps : float, added before compression (default 1e-5)
  """
  sample_rate: int = 16000
  hop: int = 256
  env_hop: int = 128
  n_mod: int = 8
  mod_kernel_s: float = 3.0
  mod_cycles: float = 3.0
  mod_fmin_hz: float = 0.5
  mod_fmax_hz: float = 30.0
  min_mod_band_hz: float = 0.25
  mod_scale_hz: float = 10.0
  mod_subsample: float = 0.0
  compression: str = "log"
  eps: float = 1e-5

  @property
  def env_rate(self):
    """Envelope sampling rate in Hz."""
    return self.sample_rate / self.env_hop

  def initial_edges(self):
    """Initial modulation band edges in Hz, (n_mod + 1,)."""
    return modulation_edges(self.mod_fmin_hz, self.mod_fmax_hz, self.n_mod,
                            self.mod_cycles / self.mod_kernel_s)

  def _odd_taps(self, seconds):
    return int(round(seconds * self.env_rate)) // 2 * 2 + 1

  @property
  def mod_kernel_size(self):
    """Length of the longest modulation filter in envelope values (odd)."""
    return self._odd_taps(self.mod_kernel_s)

  def modulation_windows(self):
    """(n_mod, mod_kernel_size) Hamming windows, filter k's ``mod_cycles / bandwidth_k``
    seconds long and centred, zero outside (a shorter filter in the common kernel)."""
    size = self.mod_kernel_size
    windows = np.zeros((self.n_mod, size), np.float32)
    for k, band in enumerate(np.diff(self.initial_edges())):
      taps = min(self._odd_taps(self.mod_cycles / band), size)
      windows[k, (size - taps) // 2:(size + taps) // 2] = np.hamming(taps)
    return windows

  def hold_periods(self):
    """Output frames per kept value of each modulation band under ``mod_subsample``."""
    if self.mod_subsample <= 0:
      return (1,) * self.n_mod
    frame_rate = self.sample_rate / self.hop
    rates = self.mod_subsample * np.diff(self.initial_edges())
    return tuple(int(max(1, np.floor(frame_rate / r))) for r in rates)

  def setup_modulation(self):
    """Declare the modulation parameters: centre and bandwidth per filter."""
    if self.hop % self.env_hop:
      raise ConfigError(f"env_hop {self.env_hop} must divide hop {self.hop}")
    edges = self.initial_edges()
    if edges[-1] >= self.env_rate / 2.0:
      raise ConfigError(f"mod_fmax_hz {self.mod_fmax_hz} must lie below the envelope's Nyquist "
                       f"rate {self.env_rate / 2.0} Hz: lower env_hop")
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
    return sinc.sinc_filterbank(centre - band / 2.0, band, self.mod_kernel_size, self.env_rate,
                                window=self.modulation_windows())

  def __call__(self, audio, train: bool = False):
    """audio (batch, time) float32 -> (batch, ceil(time / hop), n_bands, n_mod)."""
    del train
    return self._modulate(self._envelopes(audio))

  def _envelopes(self, audio):
    """Compressed band envelopes (batch, ceil(time / hop) * hop / env_hop, n_bands)."""
    frames = raw.n_frames(audio.shape[-1], self.hop)
    factor = self.hop // self.env_hop
    return sinc.compress(self.envelopes(audio, frames * factor), self.compression, self.eps)

  def _modulate(self, env):
    """Envelopes -> (batch, frames, n_bands, n_mod): every band through the K filters."""
    factor = self.hop // self.env_hop
    b, n_env, n_bands = env.shape
    frames = n_env // factor
    # Every band's envelope through the same K filters: bands go to the row axis.
    x = jnp.transpose(env, (0, 2, 1)).reshape(b * n_bands, -1)
    x = raw.pad_for_frames(x, frames, factor, self.mod_kernel_size, mode="edge")  # no log(eps) cliffs
    # By FFT: seconds-long kernels made a direct convolution 3x slower than the whole front-end.
    y = valid_correlation(x, self.modulation_kernels(), factor)
    y = jnp.transpose(y.reshape(b, n_bands, frames, self.n_mod), (0, 2, 1, 3))
    periods = self.hold_periods()
    return y if max(periods) == 1 else hold_at_rates(y, periods)

  def decompose(self, audio):
    """(band envelopes (batch, frames, n_bands) at the frame rate, decomposition (batch,
    frames, n_bands, n_mod)): what the front-end computes, for plots."""
    env = self._envelopes(audio)
    return env[:, ::self.hop // self.env_hop], self._modulate(env)

  def band_centres_hz(self):
    """Centre frequency in Hz of each first-stage band, (n_bands,)."""
    resp = self.bank_responses(1024)
    return resp["freqs_hz"][jnp.argmax(resp["magnitude"], axis=1)]

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    """``{"filterbank": ..., "modulation": ...}``: the first-stage bank's magnitude
    responses (0 to sample_rate / 2) and |DTFT| of the current modulation filters
    (0 to env_rate / 2), each ``{"freqs_hz": (n_freqs,), "magnitude": (n, n_freqs)}``."""
    freqs, mag = raw.fir_magnitude_response(self.modulation_kernels(), n_freqs, self.env_rate)
    return {"filterbank": self.bank_responses(n_freqs),
            "modulation": {"freqs_hz": freqs, "magnitude": mag}}


class ModNet(_ModulationFrontend):
  """ModNet (arXiv:2105.11836): fixed mel band envelopes + learnable modulation filter bank.

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
  """SincModNet (arXiv:2105.11836): learnable SincNet band envelopes + modulation filter bank.

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
      raise ConfigError(f"stride {self.stride} must divide env_hop {self.env_hop}")
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
