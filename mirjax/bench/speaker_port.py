"""A PyTorch port of the speaker model's audio encoder (mirjax.models.speaker.AudioEncoder),
the baseline `mirjax.bench.speaker` times mirjax's embedding extraction against.

Written from mirjax's own equations with the sizes of a `speaker_config` and run as a
PyTorch user would run it (NCHW Conv2d / BatchNorm2d, `torch.stft`, eval mode, under
`torch.inference_mode`):

  log-mel   frames centred every `hop` samples (n_fft // 2 zeros in front, the end padded
            or cut so that ceil(samples / hop) frames fit), periodic Hann window, power
            spectrum, mirjax's Slaney mel filter bank (librosa's), 10 log10(mel + offset)
  CMN       minus each utterance's mean over frames
  ResNet    3x3 stem conv + BN + ReLU, stages of basic blocks (stride 2 in the first block
            of every stage after the first, 1x1 conv + BN shortcut where the shape changes)
  pooling   (frequency, channels) flattened per frame, attentive statistics pooling
            (tanh attention, softmax over frames, weighted mean and standard deviation)
  embedding a linear layer

`load_flax` copies a mirjax model's variables into it, so the two compute the same
embeddings up to float32 rounding. It is used only for timing and that comparison.
PyTorch is not a dependency of mirjax: `pip install torch` to run it.
"""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mirjax.audio import mel as mel_lib


class LogMel(nn.Module):
  """(batch, samples) -> (batch, frames, n_mels) dB, as mirjax.frontends.mel.LogMel."""

  def __init__(self, fe):
    super().__init__()
    self.n_fft, self.hop, self.log_offset = fe.n_fft, fe.hop, fe.get("log_offset", 1e-6)
    self.register_buffer("window", torch.hann_window(fe.n_fft, periodic=True))
    mel = mel_lib.mel_filterbank(sr=fe.sample_rate, n_fft=fe.n_fft, n_mels=fe.n_mels,
                                 fmin=fe.fmin, fmax=fe.fmax)
    self.register_buffer("mel", torch.from_numpy(np.ascontiguousarray(mel.T)))  # (bins, mels)

  def forward(self, audio):
    time = audio.shape[-1]
    n_frames = -(-time // self.hop)
    right = (n_frames - 1) * self.hop + self.n_fft - self.n_fft // 2 - time
    x = F.pad(audio, (self.n_fft // 2, max(right, 0)))[..., :(n_frames - 1) * self.hop + self.n_fft]
    spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=False,
                      return_complex=True)  # (batch, bins, frames)
    power = spec.real.square() + spec.imag.square()
    return 10.0 * torch.log10(power.transpose(1, 2) @ self.mel + self.log_offset)


class BasicBlock(nn.Module):
  def __init__(self, in_width, width, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(in_width, width, 3, stride, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(width)
    self.shortcut = None
    if stride != 1 or in_width != width:
      self.shortcut = nn.Sequential(nn.Conv2d(in_width, width, 1, stride, bias=False),
                                    nn.BatchNorm2d(width))

  def forward(self, x):
    y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
    return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
  """(batch, 1, frames, mels) -> (batch, widths[-1], frames', mels'); no max-pool."""

  def __init__(self, widths, blocks):
    super().__init__()
    self.stem = nn.Conv2d(1, widths[0], 3, padding=1, bias=False)
    self.stem_bn = nn.BatchNorm2d(widths[0])
    layers, prev = [], widths[0]
    for i, (width, n) in enumerate(zip(widths, blocks)):
      for j in range(n):
        layers.append(BasicBlock(prev, width, 2 if i > 0 and j == 0 else 1))
        prev = width
    self.blocks = nn.Sequential(*layers)

  def forward(self, x):
    return self.blocks(F.relu(self.stem_bn(self.stem(x))))


class AttentiveStatsPooling(nn.Module):
  """(batch, time, dim) -> (batch, 2 dim): Okabe et al.'s weighted mean and deviation."""

  def __init__(self, dim, hidden, eps=1e-10):
    super().__init__()
    self.hidden, self.score, self.eps = nn.Linear(dim, hidden), nn.Linear(hidden, 1), eps

  def forward(self, h):
    a = torch.softmax(self.score(torch.tanh(self.hidden(h)))[..., 0], dim=1)[..., None]
    mean = torch.sum(a * h, dim=1)
    var = torch.sum(a * h * h, dim=1) - mean * mean
    return torch.cat([mean, torch.sqrt(torch.clamp(var, min=self.eps))], dim=-1)


class AudioEncoder(nn.Module):
  """(batch, samples) audio -> (batch, embed_dim): mirjax's AudioEncoder in PyTorch."""

  def __init__(self, cfg):
    super().__init__()
    a = cfg.audio
    self.frontend, self.mean_norm = LogMel(a.frontend), a.mean_norm
    self.resnet = ResNet(tuple(a.widths), tuple(a.blocks))
    freq = a.frontend.n_mels
    for _ in a.widths[1:]:
      freq = -(-freq // 2)  # each stride-2 stage: ceil(freq / 2)
    dim = freq * a.widths[-1]
    self.pool = AttentiveStatsPooling(dim, a.attention_hidden)
    self.project = nn.Linear(2 * dim, cfg.embed_dim)

  def forward(self, audio):
    x = self.frontend(audio)  # (batch, frames, mels)
    if self.mean_norm:
      x = x - x.mean(dim=1, keepdim=True)
    x = self.resnet(x[:, None])  # NCHW: (batch, channels, frames', mels')
    x = x.permute(0, 2, 3, 1).flatten(2)  # (batch, frames', mels' * channels), as mirjax's NHWC
    return self.project(self.pool(x))


def audio_encoder(cfg):
  """The port of the audio encoder of a `speaker_config` (variant "audio", "fusion" or
  "multiview"), in eval mode."""
  return AudioEncoder(cfg).eval()


def load_flax(port, variables):
  """Copies the audio encoder's weights and batch statistics from a mirjax AVSpeaker's
  `variables` into `port` (an `AudioEncoder`); returns `port`."""
  params = variables["params"]["audio_encoder"]
  stats = variables["batch_stats"]["audio_encoder"]
  t = lambda x: torch.from_numpy(np.array(x, np.float32))

  def conv(module, p):
    module.weight.copy_(t(p["kernel"]).permute(3, 2, 0, 1))  # (kh, kw, in, out) -> (out, in, kh, kw)

  def bn(module, p, s):
    module.weight.copy_(t(p["scale"]))
    module.bias.copy_(t(p["bias"]))
    module.running_mean.copy_(t(s["mean"]))
    module.running_var.copy_(t(s["var"]))

  def dense(module, p):
    module.weight.copy_(t(p["kernel"]).T)
    module.bias.copy_(t(p["bias"]))

  with torch.no_grad():
    r, rs = params["resnet"], stats["resnet"]
    conv(port.resnet.stem, r["stem"])
    bn(port.resnet.stem_bn, r["stem_bn"], rs["stem_bn"])
    names = sorted((k for k in r if k.startswith("stage")),
                   key=lambda k: tuple(int(s) for s in k[len("stage"):].split("_block")))
    if len(names) != len(port.resnet.blocks):
      raise ValueError(f"mirjax has {len(names)} residual blocks, the port {len(port.resnet.blocks)}")
    for name, block in zip(names, port.resnet.blocks):
      conv(block.conv1, r[name]["conv1"])
      bn(block.bn1, r[name]["bn1"], rs[name]["bn1"])
      conv(block.conv2, r[name]["conv2"])
      bn(block.bn2, r[name]["bn2"], rs[name]["bn2"])
      if block.shortcut is not None:
        conv(block.shortcut[0], r[name]["shortcut"])
        bn(block.shortcut[1], r[name]["shortcut_bn"], rs[name]["shortcut_bn"])
    dense(port.pool.hidden, params["pool"]["hidden"])
    dense(port.pool.score, params["pool"]["score"])
    dense(port.project, params["project"])
  return port
