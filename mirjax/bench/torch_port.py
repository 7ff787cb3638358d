"""PyTorch ports of the flagship (SincModNet front-end + short-chunk CNN) and of the log-mel
short-chunk CNN, the baselines `mirjax.bench.train` times mirjax's train step against, in
PyTorch's eager NCHW, eager channels_last and torch.compile settings (`train_step_fn`).

Written from mirjax's own equations (frontends/sinc.py, frontends/modulation.py,
models/short_chunk_cnn.py) with the same sizes, so the two do the same work per step;
it is not numerically identical (initialisation, padding details and batch-norm axes
differ slightly) and is used only for timing. PyTorch is not a dependency of mirjax:
`pip install torch` to run it.
"""
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def _hamming(n):
  return torch.tensor(np.hamming(n), dtype=torch.float32)


class SincModNet(nn.Module):
  """Analytic sinc band-passes at a stride -> envelopes -> log -> modulation filters."""

  def __init__(self, cfg, sample_rate=16000):
    super().__init__()
    self.cfg, self.sr = cfg, sample_rate
    edges = 700.0 * (10 ** (np.linspace(2595 * np.log10(1 + 30 / 700),
                                         2595 * np.log10(1 + (sample_rate / 2 - 100) / 700),
                                         cfg.n_bands + 1) / 2595) - 1)  # HTK-mel-spaced edges
    self.low = nn.Parameter(torch.tensor(edges[:-1] / cfg.scale_hz, dtype=torch.float32))
    self.band = nn.Parameter(torch.tensor(np.diff(edges) / cfg.scale_hz, dtype=torch.float32))
    env_rate = sample_rate / cfg.env_hop
    mod_edges = np.geomspace(cfg.mod_fmin_hz, cfg.mod_fmax_hz, cfg.n_mod + 1)
    self.mod_centre = nn.Parameter(torch.tensor((mod_edges[:-1] + mod_edges[1:]) / 2 / cfg.mod_scale_hz,
                                                dtype=torch.float32))
    self.mod_band = nn.Parameter(torch.tensor(np.diff(mod_edges) / cfg.mod_scale_hz, dtype=torch.float32))
    self.env_rate = env_rate
    self.mod_taps = int(round(cfg.mod_kernel_s * env_rate)) // 2 * 2 + 1
    self.register_buffer("win", _hamming(cfg.kernel_size))
    self.register_buffer("mod_win", _hamming(self.mod_taps))

  @staticmethod
  def _bandpass(low_hz, band_hz, taps, rate, window, quadrature=False):
    n = torch.arange(taps, dtype=torch.float32) - (taps - 1) / 2
    b = band_hz[:, None] / rate
    fc = low_hz[:, None] / rate + b / 2
    lowpass = 2 * b * torch.sinc(b * n) * window  # 2 b sinc(pi b n) w[n]
    inphase = lowpass * torch.cos(2 * math.pi * fc * n)
    return (inphase, lowpass * torch.sin(2 * math.pi * fc * n)) if quadrature else inphase

  def forward(self, audio):
    c = self.cfg
    low = c.min_low_hz + self.low.abs() * c.scale_hz
    high = torch.clamp(low + c.min_band_hz + self.band.abs() * c.scale_hz, c.min_low_hz, self.sr / 2)
    h_i, h_q = self._bandpass(low, high - low, c.kernel_size, self.sr, self.win, quadrature=True)
    frames = -(-audio.shape[-1] // c.hop)
    factor = c.env_hop // c.stride
    n_env = frames * (c.hop // c.env_hop)
    n_out = n_env * factor
    x = F.pad(audio[:, None], (c.kernel_size // 2, max(0, (n_out - 1) * c.stride + c.kernel_size
                                                          - audio.shape[-1] - c.kernel_size // 2)))
    y = F.conv1d(x, torch.cat([h_i, h_q])[:, None], stride=c.stride)[..., :n_out]
    env = torch.sqrt(y[:, :c.n_bands] ** 2 + y[:, c.n_bands:] ** 2 + 1e-12)
    env = torch.log(F.avg_pool1d(env, factor) + c.eps)  # (B, bands, n_env)
    centre = torch.clamp(self.mod_centre.abs() * c.mod_scale_hz, 0, self.env_rate / 2)
    band = c.min_mod_band_hz + self.mod_band.abs() * c.mod_scale_hz
    kern = self._bandpass(centre - band / 2, band, self.mod_taps, self.env_rate, self.mod_win)
    b, nb, t = env.shape
    step = c.hop // c.env_hop
    e = F.pad(env.reshape(b * nb, 1, t), (self.mod_taps // 2, self.mod_taps // 2), mode="replicate")
    m = F.conv1d(e, kern[:, None], stride=step)[..., :frames]  # (B * bands, n_mod, frames)
    return m.reshape(b, nb, c.n_mod, frames).permute(0, 2, 3, 1)  # NCHW: (B, n_mod, frames, bands)


class LogMel(nn.Module):
  """frontends/mel.py's LogMel: periodic-Hann STFT frames centred at i * hop (zeros outside),
  power through librosa's Slaney mel bank, 10 log10(mel + offset); NCHW (B, 1, frames, mels)."""

  def __init__(self, cfg):
    super().__init__()
    from mirjax.audio import mel as mel_lib  # pylint: disable=import-outside-toplevel
    self.cfg = cfg
    bank = mel_lib.mel_filterbank(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                                  fmax=cfg.fmax)
    self.register_buffer("bank", torch.tensor(np.asarray(bank).T, dtype=torch.float32))
    self.register_buffer("window", torch.hann_window(cfg.n_fft, periodic=True))

  def forward(self, audio):
    c = self.cfg
    frames = -(-audio.shape[-1] // c.hop)
    right = (frames - 1) * c.hop + c.n_fft - c.n_fft // 2 - audio.shape[-1]
    x = F.pad(audio, (c.n_fft // 2, max(right, 0)))[..., :(frames - 1) * c.hop + c.n_fft]
    spec = torch.stft(x, c.n_fft, c.hop, window=self.window, center=False, return_complex=True)
    power = spec.real ** 2 + spec.imag ** 2  # (B, freqs, frames)
    mel = torch.matmul(power.transpose(1, 2), self.bank)  # (B, frames, mels)
    return (10.0 * torch.log10(mel + c.get("log_offset", 1e-6)))[:, None]


class ShortChunkCNN(nn.Module):
  """3x3 conv + BN + ReLU + 2x2 max-pool blocks, global max, dense + BN + ReLU, output."""

  def __init__(self, in_channels, n_features, channels, dense, n_outputs, dropout):
    super().__init__()
    self.input_norm = nn.BatchNorm2d(in_channels)
    blocks, prev = [], in_channels
    for width in channels:
      blocks += [nn.Conv2d(prev, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                 nn.MaxPool2d(2, ceil_mode=False)]
      prev = width
    self.blocks = nn.Sequential(*blocks)
    self.dense = nn.Sequential(nn.Linear(prev, dense, bias=False), nn.BatchNorm1d(dense), nn.ReLU(),
                               nn.Dropout(dropout), nn.Linear(dense, n_outputs))

  channels_last = False  # train_step_fn's "eager channels_last": NHWC activations

  def forward(self, x):
    if self.channels_last:
      x = x.contiguous(memory_format=torch.channels_last)
    x = self.blocks(self.input_norm(x))
    return self.dense(torch.amax(x, dim=(2, 3)))


def melcnn(model_cfg, n_outputs):
  """The log-mel short-chunk CNN in PyTorch from a mirjax model config (configs/melcnn.py)."""
  fe, be = model_cfg.frontend, model_cfg.backend
  return nn.Sequential(LogMel(fe), ShortChunkCNN(1, fe.n_mels, tuple(be.channels), be.dense, n_outputs,
                                                 be.dropout))


def flagship(model_cfg, n_outputs):
  """The flagship in PyTorch from a mirjax model config (models.default_config('sincmodnet'))."""
  fe, be = model_cfg.frontend, model_cfg.backend
  return nn.Sequential(SincModNet(fe, fe.sample_rate),
                       ShortChunkCNN(fe.n_mod, fe.n_bands, tuple(be.channels), be.dense, n_outputs,
                                     be.dropout))


MODES = ("eager NCHW", "eager channels_last", "torch.compile")


def train_step_fn(model, lr=1e-3, mode="eager NCHW"):
  """A function (audio, tags) -> loss that takes one AdamW step, as mirjax's train step, in
  one of MODES: PyTorch's default eager execution, eager with the 2-D convolutions' weights
  and activations in channels_last (NHWC) memory order, or the model compiled by
  torch.compile (its default inductor backend, static shapes; the optimizer step stays eager)."""
  if mode not in MODES:
    raise ValueError(f"mode {mode!r}: one of {MODES}")
  if mode == "eager channels_last":
    model = model.to(memory_format=torch.channels_last)
    for m in model.modules():
      if isinstance(m, ShortChunkCNN):
        m.channels_last = True
  opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
  # static shapes: one batch shape is timed (automatic dynamic shapes would recompile the
  # short-chunk CNN shared by both ports symbolically once a second shape is seen)
  forward = torch.compile(model, dynamic=False) if mode == "torch.compile" else model

  def step(audio, tags):
    opt.zero_grad(set_to_none=True)
    loss = F.binary_cross_entropy_with_logits(forward(audio), tags)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.detach()
  return step
