"""Self-supervised reconstruction of hand-crafted features (PASE-style workers; Pascual et
al. 2019, Wu et al. 2021): each branch is a worker whose loss is the mean squared error of
its prediction against its target, computed on device from the batch's own audio.

Targets are computed at a hop of 256 samples (centred frames, as librosa), standardised
over the batch per dimension (so every worker's loss starts near 1), and averaged down to
the encoder's frame rate.
"""
import jax
import jax.numpy as jnp
import numpy as np

from mirjax import audio as dsp
from mirjax.audio import features
from mirjax.tasks.common import masked_mean
from mirjax.errors import ConfigError

HOP = 256  # samples between target frames


def _db(p):
  return 10.0 * jnp.log10(p + 1e-6)


def _prosody(x, sr):
  """[log f0 where voiced (else 0), voicing = 1 - aperiodicity, log RMS energy]."""
  f0, aperiodicity = features.yin(x, fmin=60.0, fmax=1000.0, sr=sr, frame_length=1024, hop_length=HOP)
  voiced = aperiodicity < 0.2
  energy = features.rms(x, frame_length=1024, hop_length=HOP)
  return jnp.stack([jnp.where(voiced, jnp.log(f0), 0.0), 1.0 - jnp.clip(aperiodicity, 0.0, 1.0),
                    jnp.log(energy + 1e-5)], axis=-1)


# worker -> (target dimension, fn(audio (B, t), sr) -> (B, frames at HOP, dim)); "waveform"
# is special: it is cut at the encoder's own stride (`targets`).
WORKERS = {
    "waveform": (64, None),  # the segment's samples, averaged into 64 equal parts
    "lps": (257, lambda x, sr: _db(dsp.spectrogram(x, 512, HOP))),  # log-power spectrum
    "mfcc": (20, lambda x, sr: dsp.mfcc(x, sr=sr, n_mfcc=20, n_fft=512, hop_length=HOP, n_mels=40)),
    "logmel": (40, lambda x, sr: _db(dsp.melspectrogram(x, sr=sr, n_fft=512, hop_length=HOP, n_mels=40))),
    "chroma": (12, lambda x, sr: dsp.chroma_stft(x, sr=sr, n_fft=2048, hop_length=HOP)),
    "tempogram": (64, lambda x, sr: features.tempogram(x, sr=sr, hop_length=HOP, win_length=64)),
    "prosody": (3, _prosody),  # f0, voicing and energy
    "contrast": (7, lambda x, sr: features.spectral_contrast(x, sr=sr, n_fft=1024, hop_length=HOP)),
}


def target(name: str, audio, sr: int, frames: int, stride: int, mask=None):
  """Worker `name`'s target for `audio` (B, t) at `frames` frames of `stride` samples:
  (B, frames, dim), standardised over batch and frames per dimension; with a `mask` (B,)
  over the examples where it is true only, so that the padding of an evaluation batch
  does not change the targets (and losses) of the real examples."""
  if stride % HOP:
    raise ValueError(f"encoder stride {stride} must be a multiple of {HOP}")
  b, t = audio.shape
  if name == "waveform":
    need = frames * stride
    x = jnp.pad(audio, [(0, 0), (0, max(0, need - t))])[:, :need]
    y = x.reshape(b, frames, 64, stride // 64).mean(-1)
  else:
    y = WORKERS[name][1](audio, sr)  # (B, 1 + t // HOP, dim)
    factor = stride // HOP
    y = y[:, :frames * factor].reshape(b, frames, factor, -1).mean(2)
  if mask is None:
    mean = jnp.mean(y, axis=(0, 1), keepdims=True)
    std = jnp.std(y, axis=(0, 1), keepdims=True)
  else:
    real = jnp.broadcast_to(mask.astype(bool)[:, None, None], y.shape)
    count = jnp.maximum(jnp.sum(real[..., :1]), 1).astype(y.dtype)
    mean = jnp.sum(jnp.where(real, y, 0.0), axis=(0, 1), keepdims=True) / count
    var = jnp.sum(jnp.where(real, jnp.square(y - mean), 0.0), axis=(0, 1), keepdims=True) / count
    std = jnp.sqrt(var)
  return jax.lax.stop_gradient((y - mean) / (std + 1e-3))


class Reconstruction:
  """Branch losses of self-supervised workers; evaluation is the held-out loss itself.

  `label_free`: examples need only `audio`; the training job evaluates held-out splits by
  their per-worker losses (`steps.eval_losses`) instead of predictions.
  """
  target = None
  label_free = True

  def __init__(self, workers, sample_rate: int, stride: int):
    unknown = set(workers) - set(WORKERS)
    if unknown or not workers:
      raise ConfigError(f"unknown workers {sorted(unknown)}; choose among {sorted(WORKERS)}")
    self.branches = tuple(workers)
    self.sample_rate, self.stride = sample_rate, stride
    self.dims = tuple(WORKERS[w][0] for w in self.branches)

  def losses(self, outputs, batch, step=None):  # pylint: disable=unused-argument
    """{worker: mean squared error of its standardised target} (examples where an optional
    batch["mask"] is false are left out, of the loss and of the targets' standardisation)."""
    out = {}
    for w in self.branches:
      pred = outputs[w]
      y = target(w, batch["audio"], self.sample_rate, pred.shape[1], self.stride, batch.get("mask"))
      out[w] = masked_mean(jnp.mean(jnp.square(pred - y), axis=(1, 2)), batch.get("mask"))
    return out

  def predict(self, outputs):
    return outputs

  def summarize(self, losses: np.ndarray) -> dict:
    """Host metrics from held-out per-worker losses (K,)."""
    return {"loss": float(np.mean(losses)), **{f"loss/{w}": float(v) for w, v in zip(self.branches, losses)}}
