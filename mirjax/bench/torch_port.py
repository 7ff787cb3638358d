"""PyTorch ports of the flagship (SincModNet front-end + short-chunk CNN) and of the log-mel
short-chunk CNN, the baselines `mirjax.bench.train` times mirjax's train step against, in
PyTorch's eager NCHW, eager channels_last and torch.compile settings (`train_step_fn`).

Written from mirjax's own equations (frontends/sinc.py, frontends/modulation.py,
frontends/mel.py, models/short_chunk_cnn.py) and the same function as mirjax's model:
`load_mirjax` copies a mirjax parameter tree and its batch statistics into a port, and
`compare` checks that the two then give the same logits, loss, gradients and batch
statistics within float32 rounding. Only fixed constants (the initial band edges, the mel
bank, the FFT length) come from mirjax's code. PyTorch is not a dependency of mirjax:
`pip install torch` to run it.
"""
import copy
import math

import jax
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mirjax.audio import mel as mel_lib
from mirjax.bench.flagship import N_TAGS
from mirjax.data.info import Info
from mirjax.frontends import modulation, sinc
from mirjax.system import build_system


def _hamming(n):
  return torch.tensor(np.hamming(n), dtype=torch.float32)


def _odd_taps(seconds, rate):
  """round(seconds * rate) made odd by rounding down to even and adding one (mirjax's)."""
  return int(round(seconds * rate)) // 2 * 2 + 1


def pad_for_frames(x, n_out, stride, kernel_size, mode="constant"):
  """Pad (or crop) the last axis so a VALID conv of `kernel_size` at `stride` gives `n_out`
  outputs, output i centred on input sample i * stride (frontends/raw.py)."""
  left, total = kernel_size // 2, (n_out - 1) * stride + kernel_size
  right = max(total - x.shape[-1] - left, 0)
  return F.pad(x, (left, right), mode=mode)[..., :total]


def valid_correlation(x, kernels, stride):
  """y[r, k, i] = sum_n x[r, i * stride + n] kernels[k, n] where the kernel fits, by mirjax's
  folded FFT (frontends/modulation.py): the product of the spectra folded onto the kept
  samples' n / stride bins before one inverse transform: (rows, time) -> (rows, n_kernels, n_out)."""
  time, taps = x.shape[-1], kernels.shape[-1]
  n_out = (time - taps) // stride + 1
  front = -(taps - 1) % stride
  x = F.pad(x, (front, 0))
  n = modulation.decimation_size(x.shape[-1], stride)
  q = n // (2 * stride)

  def aliases(spectrum):
    return [spectrum[..., start:start + q + 1].flip(-1).conj() if mirrored
            else spectrum[..., start:start + q + 1] for start, mirrored in modulation.alias_slices(n, stride)]

  xs, hs = aliases(torch.fft.rfft(x, n)), aliases(torch.fft.rfft(kernels.flip(-1), n))
  folded = sum(a[:, None, :] * h[None] for a, h in zip(xs, hs)) / stride
  kept = torch.fft.irfft(folded, n // stride)
  first = (taps - 1 + front) // stride
  return kept[..., first:first + n_out]


def clip(x, low, high):
  """jnp.clip with jax's gradient: half of it at a bound, where jax's max and min split a
  tie (torch.clamp passes all of it). The top sinc band starts exactly at Nyquist."""
  return torch.minimum(torch.maximum(x, x.new_tensor(low)), x.new_tensor(high))


def compress(x, kind, eps, exponent=0.3):
  """frontends/sinc.py `compress`: "log" log(x + eps), "power" (x + eps) ** 0.3, "none"."""
  if kind == "log":
    return torch.log(x + eps)
  if kind == "power":
    return (x + eps) ** exponent
  if kind == "none":
    return x
  raise ValueError(f"compression must be 'log', 'power' or 'none', got {kind!r}")


class SincModNet(nn.Module):
  """Analytic sinc band-passes at a stride -> envelopes -> compression -> modulation
  filters by FFT -> NCHW (batch, n_mod, frames, n_bands) (frontends/modulation.py)."""

  def __init__(self, cfg, sample_rate=16000):
    super().__init__()
    self.cfg, self.sr = cfg, sample_rate
    low, band = sinc.mel_spaced_bands(cfg.n_bands, sample_rate, cfg.min_low_hz, cfg.min_band_hz)
    self.low_hz = nn.Parameter(torch.tensor(low / cfg.scale_hz, dtype=torch.float32))
    self.band_hz = nn.Parameter(torch.tensor(band / cfg.scale_hz, dtype=torch.float32))
    self.env_rate = sample_rate / cfg.env_hop
    edges = modulation.modulation_edges(cfg.mod_fmin_hz, cfg.mod_fmax_hz, cfg.n_mod,
                                        cfg.mod_cycles / cfg.mod_kernel_s)
    widths = np.diff(edges)
    self.mod_centre_hz = nn.Parameter(torch.tensor((edges[:-1] + edges[1:]) / 2 / cfg.mod_scale_hz,
                                                   dtype=torch.float32))
    self.mod_band_hz = nn.Parameter(torch.tensor(np.maximum(widths - cfg.min_mod_band_hz, 1e-3) / cfg.mod_scale_hz,
                                                 dtype=torch.float32))
    self.mod_taps = _odd_taps(cfg.mod_kernel_s, self.env_rate)
    # filter k: a Hamming window of mod_cycles / its initial bandwidth seconds, centred
    windows = np.zeros((cfg.n_mod, self.mod_taps), np.float32)
    for k, width in enumerate(widths):
      taps = min(_odd_taps(cfg.mod_cycles / width, self.env_rate), self.mod_taps)
      windows[k, (self.mod_taps - taps) // 2:(self.mod_taps + taps) // 2] = np.hamming(taps)
    self.register_buffer("win", _hamming(cfg.kernel_size))
    self.register_buffer("mod_win", torch.from_numpy(windows))
    frame_rate = sample_rate / cfg.hop
    self.periods = ((1,) * cfg.n_mod if cfg.mod_subsample <= 0 else
                    tuple(int(max(1, np.floor(frame_rate / (cfg.mod_subsample * w)))) for w in widths))

  def _taps(self, taps):
    return torch.arange(taps, dtype=torch.float32, device=self.win.device) - (taps - 1) / 2

  def sinc_filters(self):
    """In-phase and quadrature analytic sinc band-passes (n_bands, kernel_size) each."""
    c = self.cfg
    low = c.min_low_hz + self.low_hz.abs() * c.scale_hz
    high = clip(low + c.min_band_hz + self.band_hz.abs() * c.scale_hz, c.min_low_hz, self.sr / 2)
    n = self._taps(c.kernel_size)
    b = (high - low)[:, None] / self.sr
    fc = low[:, None] / self.sr + b / 2
    lowpass = 2 * b * torch.sinc(b * n) * self.win  # 2 b sinc(pi b n) w[n]
    return lowpass * torch.cos(2 * math.pi * fc * n), lowpass * torch.sin(2 * math.pi * fc * n)

  def modulation_filters(self):
    """(n_mod, mod_taps) windowed sinc band-passes at the envelope rate, the difference of
    two low-passes (sinc_filterbank) with f1 = centre - band / 2."""
    c = self.cfg
    centre = clip(self.mod_centre_hz.abs() * c.mod_scale_hz, 0.0, self.env_rate / 2)
    band = c.min_mod_band_hz + self.mod_band_hz.abs() * c.mod_scale_hz
    n = self._taps(self.mod_taps)
    f1 = (centre - band / 2)[:, None] / self.env_rate
    f2 = f1 + band[:, None] / self.env_rate
    return (2 * f2 * torch.sinc(2 * f2 * n) - 2 * f1 * torch.sinc(2 * f1 * n)) * self.mod_win

  def forward(self, audio):
    c = self.cfg
    frames = -(-audio.shape[-1] // c.hop)
    factor, step = c.env_hop // c.stride, c.hop // c.env_hop
    n_env = frames * step
    h_i, h_q = self.sinc_filters()
    x = pad_for_frames(audio[:, None], n_env * factor, c.stride, c.kernel_size)
    y = F.conv1d(x, torch.cat([h_i, h_q])[:, None], stride=c.stride)  # (B, 2 bands, n_env * factor)
    env = torch.sqrt(y[:, :c.n_bands] ** 2 + y[:, c.n_bands:] ** 2 + 1e-12)
    env = compress(F.avg_pool1d(env, factor), c.compression, c.eps)  # (B, bands, n_env)
    b, nb, _ = env.shape
    e = pad_for_frames(env.reshape(b * nb, -1), frames, step, self.mod_taps, mode="replicate")
    m = valid_correlation(e, self.modulation_filters(), step)  # (B * bands, n_mod, frames)
    m = m.reshape(b, nb, c.n_mod, frames).permute(0, 2, 3, 1)  # NCHW: (B, n_mod, frames, bands)
    if max(self.periods) == 1:
      return m
    return torch.stack([m[:, k, ::p].repeat_interleave(p, dim=1)[:, :frames]
                        for k, p in enumerate(self.periods)], dim=1)  # sample and hold


class LogMel(nn.Module):
  """frontends/mel.py's LogMel: periodic-Hann STFT frames centred at i * hop (zeros outside),
  power through librosa's Slaney mel bank, 10 log10(mel + offset); NCHW (B, 1, frames, mels)."""

  def __init__(self, cfg):
    super().__init__()
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


class _BiasedRunningVar:
  """Mixin for torch BatchNorm: the running variance follows the biased batch variance, as
  flax.linen.BatchNorm's does (torch's own update uses the unbiased one, n / (n - 1) larger).

  Torch's kernel updates a copy, r' = (1 - m) r + m v n / (n - 1); the running variance
  becomes (1 - m) r + (r' - (1 - m) r) (n - 1) / n = (1 - m) r + m v, and the kernel stays
  torch's fast path.
  """

  def forward(self, x):
    if not (self.training and self.track_running_stats):
      return super().forward(x)
    self._check_input_dim(x)
    var = self.running_var.clone()  # the kernel's update lands here; autograd keeps it
    out = F.batch_norm(x, self.running_mean, var, self.weight, self.bias, True, self.momentum, self.eps)
    n = x.numel() // x.shape[1]
    with torch.no_grad():
      kept = (1.0 - self.momentum) * self.running_var
      self.running_var.copy_(kept + (var - kept) * ((n - 1) / n))
      self.num_batches_tracked.add_(1)
    return out


class BatchNorm1d(_BiasedRunningVar, nn.BatchNorm1d):
  """nn.BatchNorm1d with flax's running variance."""


class BatchNorm2d(_BiasedRunningVar, nn.BatchNorm2d):
  """nn.BatchNorm2d with flax's running variance."""


class FeatureNorm(nn.Module):
  """BatchNorm of NCHW (B, C, frames, features) with one mean and variance per (channel,
  feature), over batch and frames: the short-chunk CNN's `input_norm` (flax axis=(2, 3))."""

  def __init__(self, channels, features, momentum):
    super().__init__()
    self.bn = BatchNorm1d(channels * features, momentum=momentum)

  def forward(self, x):
    b, c, h, w = x.shape
    y = self.bn(x.transpose(2, 3).reshape(b, c * w, h))  # statistic index c * W + w
    return y.reshape(b, c, w, h).transpose(2, 3)


def max_pool_2x2(x):
  """models/short_chunk_cnn.py `max_pool_2x2` on NCHW: an axis shorter than 2 is not
  pooled, an odd length drops its last row."""
  h, w = x.shape[-2:]
  return F.max_pool2d(x, (2 if h >= 2 else 1, 2 if w >= 2 else 1))


class ShortChunkCNN(nn.Module):
  """models/short_chunk_cnn.py on NCHW: per-(channel, feature) input BatchNorm, 3x3 conv
  (SAME, no bias) + BN + ReLU + 2x2 max-pool blocks, global max, dense + BN + ReLU, dropout,
  output. BatchNorm momentum 1 - bn_momentum (torch weighs the new batch, flax the past)."""

  def __init__(self, in_channels, n_features, channels, dense, n_outputs, dropout, bn_momentum=0.99):
    super().__init__()
    m = 1.0 - bn_momentum
    self.input_norm = FeatureNorm(in_channels, n_features, m)
    widths = (in_channels,) + tuple(channels)
    self.conv = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1, bias=False) for a, b in zip(widths, widths[1:]))
    self.bn = nn.ModuleList(BatchNorm2d(b, momentum=m) for b in widths[1:])
    self.dense = nn.Linear(widths[-1], dense, bias=False)
    self.dense_bn = BatchNorm1d(dense, momentum=m)
    self.dropout = nn.Dropout(dropout)
    self.logits = nn.Linear(dense, n_outputs)

  channels_last = False  # train_step_fn's "eager channels_last": NHWC activations

  def forward(self, x):
    x = self.input_norm(x)
    if self.channels_last:
      x = x.contiguous(memory_format=torch.channels_last)
    for conv, bn in zip(self.conv, self.bn):
      x = max_pool_2x2(F.relu(bn(conv(x))))
    x = x.flatten(2).max(dim=2).values  # global max; its gradient to the first arg-max, as mirjax
    return self.logits(self.dropout(F.relu(self.dense_bn(self.dense(x)))))


def _backend(n_channels, n_features, be, n_outputs):
  return ShortChunkCNN(n_channels, n_features, tuple(be.channels), be.dense, n_outputs, be.dropout,
                       be.get("bn_momentum", 0.99))


def melcnn(model_cfg, n_outputs):
  """The log-mel short-chunk CNN in PyTorch from a mirjax model config (configs/melcnn.py)."""
  fe, be = model_cfg.frontend, model_cfg.backend
  return nn.Sequential(LogMel(fe), _backend(1, fe.n_mels, be, n_outputs))


def flagship(model_cfg, n_outputs):
  """The flagship in PyTorch from a mirjax model config (models.default_config('sincmodnet'))."""
  fe, be = model_cfg.frontend, model_cfg.backend
  return nn.Sequential(SincModNet(fe, fe.sample_rate), _backend(fe.n_mod, fe.n_bands, be, n_outputs))


def mirjax_to_torch(params, batch_stats=None):
  """{port state-dict name: tensor} of a mirjax Tagger's `params` (front-end, short-chunk
  CNN) and optionally its `batch_stats`, laid out as `melcnn` / `flagship` hold them (a
  tree of gradients maps the same way)."""
  t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))
  out = {f"0.{k}": t(v) for k, v in params.get("frontend", {}).items()}
  for collection, leaves in (("params", params.get("backend", {})),
                             ("batch_stats", (batch_stats or {}).get("backend", {}))):
    for layer, vs in leaves.items():
      for leaf, v in vs.items():
        v = np.asarray(v, np.float32)
        if layer == "input_norm":  # flax (features, channels) -> torch index c * W + w
          name, v = f"input_norm.bn.{leaf}", v.T.reshape(-1)
        elif layer.startswith("conv"):  # HWIO -> OIHW
          name, v = f"conv.{layer[4:]}.{leaf}", v.transpose(3, 2, 0, 1)
        elif layer.startswith("bn"):
          name = f"bn.{layer[2:]}.{leaf}"
        else:  # dense, dense_bn, logits
          name, v = f"{layer}.{leaf}", (v.T if leaf == "kernel" else v)
        name = name.replace("kernel", "weight").replace("scale", "weight")
        if collection == "batch_stats":
          name = name.replace("mean", "running_mean").replace("var", "running_var")
        out[f"1.{name}"] = t(v)
  return out


def load_mirjax(module, params, model_state=None):
  """Copy a mirjax Tagger's parameters (and `model_state`'s batch statistics) into the port
  `module` (`melcnn` or `flagship`); every parameter and running statistic of the port must
  receive a value of its own shape. Returns `module`."""
  values = mirjax_to_torch(params, (model_state or {}).get("batch_stats"))
  own = module.state_dict()
  needed = {k for k, _ in module.named_parameters()}
  if model_state:
    needed |= {k for k in own if k.endswith(("running_mean", "running_var"))}
  missing, unknown = sorted(needed - set(values)), sorted(set(values) - set(own))
  wrong = [k for k in values if k in own and tuple(own[k].shape) != tuple(values[k].shape)]
  if missing or unknown or wrong:
    raise ValueError(f"mirjax -> PyTorch port: missing {missing}, unknown {unknown}, shapes differ {wrong}")
  with torch.no_grad():
    for k, v in values.items():
      own[k].copy_(v.to(own[k].device))
  return module


def _max_diff(ours, theirs):
  """(largest |ours - theirs|, that relative to max |ours|, the output's scale)."""
  ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
  diff = float(np.max(np.abs(ours - theirs)))
  return diff, diff / max(float(np.max(np.abs(ours))), 1e-30)


def _leaf_diffs(ours, theirs, floor=None):
  """(largest |difference|, worst relative difference, its leaf) over the leaves of two
  {name: array} trees: per leaf the largest |difference| over max |ours| or, given a
  `floor`, ||ours - theirs|| / max(||ours||, floor)."""
  worst, largest = (0.0, ""), 0.0
  for k, v in ours.items():
    v, d = np.asarray(v, np.float64), np.asarray(v, np.float64) - np.asarray(theirs[k], np.float64)
    largest = max(largest, float(np.max(np.abs(d))))
    rel = (_max_diff(v, theirs[k])[1] if floor is None else
           float(np.linalg.norm(d)) / max(float(np.linalg.norm(v)), floor, 1e-30))
    worst = max(worst, (rel, k))
  return largest, worst[0], worst[1]


GRADIENT_FLOOR = 1e-3  # a leaf's gradient is judged against at least this fraction of the whole's
# Largest relative differences `check` accepts. Outputs: float32 rounds each operation to
# 6e-8 relative; summation orders differ over sums of up to 10^4 terms and batch norm divides
# by small deviations, which measured 1e-5 to 3e-5 of the logits' scale; 1e-4 leaves room for
# that and is far below what a difference of formula does (a batch-norm axis, a padding, a
# window: 1e-2 and more). Gradients: a float32 near-tie in a max-pool window can resolve
# differently on the two sides and send that window's gradient to another element (ties
# themselves go to the first maximum on both); that measured up to 1e-2 of a leaf's norm
# at batches of 4-8, and 3e-3 (flagship) and 8e-3 (Won et al.'s size) at the bench's 16.
TOLERANCES = {"logits": 1e-4, "loss": 1e-4, "batch stats": 1e-4, "eval logits": 1e-4,
              "front-end gradients": 5e-2, "back-end gradients": 5e-2}


def check(diffs):
  """Raise ValueError naming every entry of `compare`'s `diffs` whose relative difference
  exceeds TOLERANCES."""
  bad = [f"{k}: {rel:.2e} > {TOLERANCES[k]:g}{f' ({where})' if where else ''}"
         for k, (_, rel, where) in diffs.items() if rel > TOLERANCES[k]]
  if bad:
    raise ValueError("mirjax and its PyTorch port do not compute the same function with the same "
                     "weights: " + "; ".join(bad))


def initial_variables(config, seed=0):
  """(params, model_state, system) of mirjax's fresh state for `config` from `seed`, the
  arrays on the host: what `flagship.mirjax_step` starts from with seed 0."""
  info = Info(name="synthetic", sample_rate=16000, tag_names=tuple(f"tag{i}" for i in range(N_TAGS)))
  system = build_system(config, info)
  state = system.make_state(jax.random.key(seed))
  return jax.device_get(state.params), jax.device_get(state.model_state), system


def compare(config, batch, port, seed=0, variables=None):
  """Differences between mirjax's model of `config` and its PyTorch port `port` ("flagship"
  or "melcnn") given the same weights (mirjax's initial state from `seed`, or `variables`,
  a (params, model_state) pair of its shapes), in float32 on one `batch` ({"audio",
  "tags"}), with dropout off (rate 0 on both sides).

  Train mode, each batch-norm normalising by the batch's own statistics as in a train step:
  "logits", "loss", "front-end gradients" and "back-end gradients" (of the loss, per
  parameter leaf; the log-mel front-end has none) and "batch stats" (the running statistics
  after the step). Eval mode, on those running statistics: "eval logits". Each is (largest
  |mirjax - port|, relative difference, where): for arrays relative to mirjax's largest
  |value| (the output's scale); for the batch statistics the worst leaf's; for gradients the
  worst leaf's ||difference|| / ||mirjax's||, that norm floored at GRADIENT_FLOOR x the
  whole gradient's (a bias whose gradient a later batch norm cancels is zero but for
  rounding). Matmuls and convolutions run at full float32 precision on both sides (no TF32)."""
  config = copy.deepcopy(config)
  config.dtype, config.model.backend.dropout = "float32", 0.0
  if "param_dtype" in config:
    config.param_dtype = "float32"
  params, model_state, system = initial_variables(config, seed)
  if variables is not None:
    params, model_state = jax.tree.map(lambda a: np.asarray(a, np.float32), variables)
  audio, tags = np.asarray(batch["audio"], np.float32), np.asarray(batch["tags"], np.float32)
  branch = system.task.branches[0]

  def loss_fn(params, audio, tags):
    outputs, new_state = system.model.apply({"params": params, **model_state}, {"audio": audio},
                                            train=True, mutable=list(model_state))
    return system.task.losses(outputs, {"tags": tags})[branch], (outputs[branch], new_state)

  with jax.default_matmul_precision("highest"):
    (loss, (logits, new_state)), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        params, audio, tags)
    eval_logits = jax.jit(lambda p, s, a: system.model.apply({"params": p, **s}, {"audio": a})[branch])(
        params, new_state, audio)
  logits, eval_logits, grads, new_state = jax.device_get((logits, eval_logits, grads, new_state))

  model = load_mirjax(globals()[port](config.model, N_TAGS), params, model_state).train()
  torch_logits = model(torch.from_numpy(audio))
  torch_loss = F.binary_cross_entropy_with_logits(torch_logits, torch.from_numpy(tags))
  torch_loss.backward()
  stats = model.state_dict()
  with torch.no_grad():
    torch_eval = model.eval()(torch.from_numpy(audio))
  torch_grads = {k: p.grad.numpy() for k, p in model.named_parameters()}
  ours = mirjax_to_torch(grads)
  total = math.sqrt(sum(float(np.sum(np.asarray(g, np.float64) ** 2)) for g in ours.values()))
  out = {"logits": (*_max_diff(logits, torch_logits.detach().numpy()), ""),
         "loss": (*_max_diff(loss, torch_loss.detach().numpy()), "")}
  for part, prefix in (("front-end", "0."), ("back-end", "1.")):
    leaves = {k: g for k, g in ours.items() if k.startswith(prefix)}
    if leaves:
      out[f"{part} gradients"] = _leaf_diffs(leaves, torch_grads, GRADIENT_FLOOR * total)
  out["batch stats"] = _leaf_diffs(mirjax_to_torch({}, new_state["batch_stats"]),
                                   {k: v.numpy() for k, v in stats.items()})
  out["eval logits"] = (*_max_diff(eval_logits, torch_eval.numpy()), "")
  return out


MODES = ("eager NCHW", "eager channels_last", "torch.compile")


def train_step_fn(model, lr=1e-3, mode="eager NCHW", weight_decay=1e-4, clip_norm=1.0):
  """A function (audio, tags) -> loss that takes one AdamW step, as mirjax's train step, in
  one of MODES: PyTorch's default eager execution, eager with the 2-D convolutions' weights
  and activations in channels_last (NHWC) memory order, or the model compiled by
  torch.compile (its default inductor backend, static shapes; the optimizer step stays eager).
  `clip_norm` 0: no clipping of the gradient's global norm."""
  if mode not in MODES:
    raise ValueError(f"mode {mode!r}: one of {MODES}")
  if mode == "eager channels_last":
    model = model.to(memory_format=torch.channels_last)
    for m in model.modules():
      if isinstance(m, ShortChunkCNN):
        m.channels_last = True
  opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
  # static shapes: one batch shape is timed (automatic dynamic shapes would recompile the
  # short-chunk CNN shared by both ports symbolically once a second shape is seen)
  forward = torch.compile(model, dynamic=False) if mode == "torch.compile" else model

  def step(audio, tags):
    opt.zero_grad(set_to_none=True)
    loss = F.binary_cross_entropy_with_logits(forward(audio), tags)
    loss.backward()
    if clip_norm:
      torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    opt.step()
    return loss.detach()
  return step
