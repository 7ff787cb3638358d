"""The content CNN of "Deep content-based music recommendation" (van den Oord, Dieleman &
Schrauwen, NIPS 2013): a song's latent factors regressed from a few seconds of log-mel.

Its structure is the paper's: convolutions over time only, the mel bands being the input
channels; max-pooling over time between them; a global temporal pooling that summarises
the whole window by the mean, the maximum and the L2 norm over time of every channel; then
dense layers. The widths here are sized for a CPU and the embedded data (they are config
fields), not the paper's.
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from mirjax.errors import ConfigError
from mirjax.models.dieleman import time_pool


def global_temporal_pool(x):
  """(batch, frames, channels) -> (batch, 3 channels): the mean, the maximum and the L2 norm
  over frames of every channel, concatenated in that order."""
  l2 = jnp.sqrt(jnp.sum(jnp.square(x), axis=1) + 1e-12)  # eps: a finite gradient at an all-zero channel
  return jnp.concatenate([jnp.mean(x, axis=1), jnp.max(x, axis=1), l2], axis=-1)


class ContentCNN(nn.Module):
  """Input: (batch, frames, features) or (batch, frames, features, channels) (the front-end's
  output; features x channels become the channels of a 1-D convolution over frames).

  For each width in ``channels``: conv over ``kernel_size`` frames (VALID, bias) + ReLU,
  then max-pooling over frames by ``pools[i]`` after every conv but the last (``pools``
  has one entry fewer than ``channels``); the global temporal pooling (mean, max, L2) of
  the last conv's output; a ReLU dense layer per width of ``dense``; dropout; the output
  layer (linear: the task is regression).

  ``input_norm`` standardises each input feature with one BatchNorm (as Dieleman1D), so
  log-mel in dB trains with the default learning rate.

  ``__call__(x, train)`` returns (batch, n_outputs), or with ``n_outputs`` None the
  embedding after the last hidden dense layer. Each conv block's output is sown as
  ``block{i}``, the pooled summary as ``pooled`` and the embedding as ``embedding`` (the
  layers the similarity and transfer jobs compare).
  """
  n_outputs: int | None
  channels: Sequence[int] = (64, 64, 128)
  kernel_size: int = 4
  pools: Sequence[int] = (4, 2)
  dense: Sequence[int] = (256,)
  dropout: float = 0.0
  input_norm: bool = True
  bn_momentum: float = 0.99

  @nn.compact
  def __call__(self, x, train: bool = False):
    if len(self.pools) != len(self.channels) - 1:
      raise ConfigError(f"content CNN: pools {tuple(self.pools)} must have one entry fewer than channels "
                        f"{tuple(self.channels)} (the last conv is pooled globally)")
    if x.ndim == 4:
      x = x.reshape(*x.shape[:2], -1)
    if self.input_norm:
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, name="input_norm")(x)
    for i, width in enumerate(self.channels):
      if x.shape[1] < self.kernel_size:
        raise ConfigError(f"content CNN: conv {i} got {x.shape[1]} frames, fewer than its kernel of "
                          f"{self.kernel_size}: lengthen data.crop_seconds or lower the pooling")
      x = nn.relu(nn.Conv(width, (self.kernel_size,), padding="VALID", name=f"conv{i}")(x))
      if i < len(self.pools):
        x = time_pool(x, self.pools[i])
      self.sow("intermediates", f"block{i}", x)
    x = global_temporal_pool(x)
    self.sow("intermediates", "pooled", x)
    for i, width in enumerate(self.dense):
      x = nn.relu(nn.Dense(width, name=f"dense{i}")(x))
    self.sow("intermediates", "embedding", x)
    if self.n_outputs is None:
      return x
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.n_outputs, name="output")(x)
