"""Music encoders for multi-task self-supervised pre-training (Wu et al., "Multi-task
self-supervised pre-training for music classification", ICASSP 2021), their PASE-style
workers, and the probe that reuses a pre-trained encoder downstream.

An encoder maps (batch, time) audio to a sequence (batch, frames, dim), one frame every
`stride` samples; a worker is a small per-frame MLP regressing one hand-crafted target
(`mirjax.tasks.reconstruction`); a probe pools the sequence over time (mean and max) into a
linear or MLP head, with the encoder frozen or fine-tuned.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mirjax.models.short_chunk_cnn import max_pool
from mirjax.errors import ConfigError
from mirjax.inputs import audio_of


def _pool(x, time: bool):
  """2x max-pool of (B, T, F, C) over F, and over T when `time` (odd lengths drop a row)."""
  _, t, f, _ = x.shape
  return max_pool(x, 2 if time and t >= 2 else 1, 2 if f >= 2 else 1)


class Conv2dBody(nn.Module):
  """(B, T, F[, C]) -> (B, T / 2^time_pools, dim): 3x3 conv + BN + ReLU blocks, each
  pooling frequency 2x (and time 2x in the first `time_pools` blocks, as the short-chunk
  CNN does in all of them), then (F', C) flattened and projected to `dim`."""
  channels: Sequence[int] = (16, 32, 64)
  time_pools: int = 0
  dim: int = 128

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x[..., None] if x.ndim == 3 else x
    norm = lambda **kw: nn.BatchNorm(use_running_average=not train, momentum=0.99, **kw)
    x = norm(axis=(2, 3), name="input_norm")(x)  # per (feature, channel) statistics
    for i, width in enumerate(self.channels):
      x = nn.Conv(width, (3, 3), padding="SAME", use_bias=False, name=f"conv{i}")(x)
      x = _pool(nn.relu(norm(name=f"bn{i}")(x)), time=i < self.time_pools)
    x = x.reshape(x.shape[:2] + (-1,))
    return nn.Dense(self.dim, name="project")(x)


class Conv1dBody(nn.Module):
  """(B, T, F) -> (B, T, dim): 1-D conv blocks over time with the features as channels
  (kernel 3, BN, ReLU), as PASE's stack above its SincNet layer."""
  channels: Sequence[int] = (128, 128, 128)
  dim: int = 128

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape(x.shape[:2] + (-1,))
    norm = lambda **kw: nn.BatchNorm(use_running_average=not train, momentum=0.99, **kw)
    x = norm(name="input_norm")(x)
    for i, width in enumerate(self.channels):
      x = nn.Conv(width, (3,), padding="SAME", use_bias=False, name=f"conv{i}")(x)
      x = nn.relu(norm(name=f"bn{i}")(x))
    return nn.Dense(self.dim, name="project")(x)


class Encoder(nn.Module):
  """A front-end and a body: (batch, time) -> (batch, ceil(time / stride), dim)."""
  frontend: nn.Module
  body: nn.Module

  @property
  def stride(self) -> int:
    return self.frontend.hop * 2 ** getattr(self.body, "time_pools", 0)

  def __call__(self, audio, train: bool = False):
    return self.body(self.frontend(audio, train), train)

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    return self.frontend.frequency_responses(n_freqs)


class SSLModel(nn.Module):
  """Encoder + one worker per target: {worker: (batch, frames, target_dim)}.

  Attributes
  ----------
  encoder : Encoder
  workers : names of the workers (the task's branches), in order
  dims : output width of each worker
  hidden : width of each worker's hidden layer (default 128)
  """
  encoder: Encoder
  workers: Sequence[str]
  dims: Sequence[int]
  hidden: int = 128

  @nn.compact
  def __call__(self, inputs, train: bool = False):
    h = self.encoder(audio_of(inputs), train)
    return {w: nn.Dense(d, name=f"worker_{w}_out")(nn.relu(nn.Dense(self.hidden, name=f"worker_{w}")(h)))
            for w, d in zip(self.workers, self.dims)}

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    return self.encoder.frequency_responses(n_freqs)


class Probe(nn.Module):
  """A (pre-trained) encoder pooled over time into a head: {branch: logits}.

  Attributes
  ----------
  encoder : Encoder
  n_outputs : int, logits
  branch : str, the output branch's name
  head : "linear" or "mlp" (one hidden layer of `hidden` units)
  freeze : bool, the encoder runs in inference mode and passes no gradient (a probe); False
    fine-tunes it with the head
  """
  encoder: Encoder
  n_outputs: int
  branch: str = "tagging"
  head: str = "linear"
  freeze: bool = True
  hidden: int = 256

  @nn.compact
  def __call__(self, inputs, train: bool = False):
    h = self.encoder(audio_of(inputs), train and not self.freeze)
    if self.freeze:
      h = jax.lax.stop_gradient(h)
    x = jnp.concatenate([jnp.mean(h, axis=1), jnp.max(h, axis=1)], axis=-1)
    if self.head == "mlp":
      x = nn.relu(nn.Dense(self.hidden, name="hidden")(x))
    elif self.head != "linear":
      raise ConfigError(f"probe head must be 'linear' or 'mlp', got {self.head!r}")
    return {self.branch: nn.Dense(self.n_outputs, name="head")(x)}

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    return self.encoder.frequency_responses(n_freqs)
