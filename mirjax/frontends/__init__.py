"""Front-end registry: ``default_config(name)`` and ``build(cfg)``.

Every front-end maps (batch, time) audio to (batch, frames, features[, channels]) with
frames = ceil(time / hop), has an int ``hop`` and a ``frequency_responses`` method.
"""
import dataclasses

import ml_collections

from mirjax.frontends.mel import LogMel
from mirjax.frontends.modulation import ModNet, SincModNet
from mirjax.frontends.raw import StridedConv
from mirjax.frontends.sinc import SincNet
from mirjax.frontends.views import CQT, MFCC, Chroma, Gammatone
from mirjax.errors import ConfigError

FRONTENDS = {
    "logmel": LogMel,
    "rawconv": StridedConv,
    "sincnet": SincNet,
    "modnet": ModNet,
    "sincmodnet": SincModNet,
    "mfcc": MFCC,
    "gammatone": Gammatone,
    "cqt": CQT,
    "chroma": Chroma,
}


def _sinc_fields(cfg):
  """Fields of the SincNet filter bank shared by SincNet and SincModNet."""
  cfg.kernel_size = 251  # sinc filter length, samples (odd)
  cfg.stride = 16  # samples between band-envelope evaluations
  cfg.min_low_hz = 50.0  # lowest allowed low cut-off, Hz
  cfg.min_band_hz = 50.0  # smallest allowed bandwidth, Hz
  cfg.scale_hz = 1000.0  # unit of stored sinc parameters, Hz


def _modulation_fields(cfg):
  """Fields of the modulation stage shared by ModNet and SincModNet."""
  cfg.env_hop = 128  # samples per band-envelope value (125 Hz at 16 kHz); divides hop
  cfg.n_mod = 8  # number of learnable modulation filters, applied to every band
  cfg.mod_kernel_s = 3.0  # longest modulation filter (the lowest band's), seconds
  cfg.mod_cycles = 3.0  # each modulation filter is mod_cycles / its bandwidth seconds long
  cfg.mod_fmin_hz = 0.5  # lowest initial modulation band edge, Hz
  cfg.mod_fmax_hz = 30.0  # highest initial modulation band edge, Hz
  cfg.min_mod_band_hz = 0.25  # smallest learned modulation bandwidth, Hz
  cfg.mod_subsample = 0.0  # > 0: band k kept at mod_subsample x its bandwidth Hz, held between
  cfg.mod_scale_hz = 10.0  # unit of stored modulation parameters, Hz
  cfg.compression = "log"  # band-envelope compression: "log", "power" or "none"
  cfg.eps = 1e-5  # added to envelopes before compression


def default_config(name: str) -> ml_collections.ConfigDict:
  """The default (locked) config of front-end ``name``; see the module docstrings.

  Defaults are sized so front-end + `ShortChunkCNN` train at about 0.2-0.4 s per step on a
  2-core CPU for a batch of 16 x 3 s at 16 kHz.
  """
  if name not in FRONTENDS:
    raise ConfigError(f"unknown front-end {name!r}; valid: {sorted(FRONTENDS)}")
  cfg = ml_collections.ConfigDict()
  cfg.name = name  # registry key, one of FRONTENDS
  cfg.sample_rate = 16000  # audio sampling rate, Hz
  cfg.hop = 256  # samples per output frame (16 ms at 16 kHz)
  if name == "logmel":
    cfg.n_fft = 512  # FFT / window size, samples
    cfg.n_mels = 96  # number of mel bands
    cfg.fmin = 0.0  # lowest mel corner, Hz
    cfg.fmax = 8000.0  # highest mel corner, Hz
  elif name == "mfcc":
    cfg.n_fft = 512  # FFT / window size, samples
    cfg.n_mels = 96  # mel bands under the DCT
    cfg.n_mfcc = 20  # coefficients kept
    cfg.fmin = 0.0  # lowest mel corner, Hz
    cfg.fmax = 8000.0  # highest mel corner, Hz
  elif name == "gammatone":
    cfg.n_fft = 512  # FFT / window size, samples
    cfg.n_bands = 64  # ERB-spaced gammatone filters
    cfg.fmin = 50.0  # lowest centre frequency, Hz
    cfg.fmax = 8000.0  # highest centre frequency, Hz
  elif name == "cqt":
    cfg.fmin = 32.70319566257483  # lowest bin, Hz (C1)
    cfg.n_bins = 84  # constant-Q bins (7 octaves)
    cfg.bins_per_octave = 12  # bins per octave
  elif name == "chroma":
    cfg.n_fft = 2048  # FFT / window size, samples
    cfg.n_chroma = 12  # pitch classes
  elif name == "rawconv":
    cfg.n_filters = 128  # learned filters = output features
    cfg.kernel_size = 256  # filter length, samples (= hop, as Dieleman & Schrauwen)
    cfg.compression = "log1p_power"  # log(1 + C y^2); "log1p": log(1 + C|y|), "relu", "none"
    cfg.log_scale = 10000.0  # C of the log compression
    cfg.feature_pool = 1  # > 1: learn n_filters x this many filters, L2-pool each group of this many
  elif name == "sincnet":
    cfg.n_filters = 64  # band-pass filters = output features
    _sinc_fields(cfg)
    cfg.compression = "log"  # band-envelope compression: "log", "power" or "none"
    cfg.eps = 1e-5  # added to envelopes before compression
  elif name == "sincmodnet":
    cfg.n_bands = 40  # sinc band-pass filters = output features
    _sinc_fields(cfg)
  elif name == "modnet":
    cfg.n_bands = 40  # number of mel bands
    cfg.n_fft = 512  # STFT window / FFT size, samples
    cfg.fmin = 0.0  # lowest mel corner, Hz
    cfg.fmax = 8000.0  # highest mel corner, Hz
  if name in ("modnet", "sincmodnet"):
    _modulation_fields(cfg)
  cfg.lock()
  return cfg


def build(cfg):
  """Front-end module from a config (a ConfigDict or dict with ``name`` and fields).

  Raises ValueError naming the valid choices for an unknown name or field.
  """
  fields = dict(cfg)
  name = fields.pop("name", None)
  if name not in FRONTENDS:
    raise ConfigError(f"unknown front-end {name!r}; valid: {sorted(FRONTENDS)}")
  cls = FRONTENDS[name]
  valid = {f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name")}
  unknown = sorted(set(fields) - valid)
  if unknown:
    raise ConfigError(f"unknown fields {unknown} for front-end {name!r}; valid: {sorted(valid)}")
  return cls(**fields)
