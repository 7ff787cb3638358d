"""Fully convolutional tagging networks over spectrograms and over raw samples.

FCN      Choi, Fazekas & Sandler, "Automatic tagging using deep convolutional neural
         networks" (ISMIR 2016, arXiv:1606.00298): 2-D convolutional and subsampling layers
         only. Blocks of 3x3 conv + BatchNorm + ReLU + max-pool whose pooling factors shrink
         the (frames, features) map block by block; what is left is max-pooled and the
         output layer reads it.
SampleCNN  Lee, Park, Kim & Nam, "Sample-level Deep Convolutional Neural Networks for Music
         Auto-tagging Using Raw Waveforms" (arXiv:1703.01789): filters of 3 samples. Its first
         layer (a strided conv of length 3, stride 3) is mirjax's "rawconv" front-end with
         kernel_size = hop = 3; this back-end is the rest: blocks of 1-D conv of length 3 +
         BatchNorm + ReLU + max-pool by 3 over time, a 1x1 conv, global max over time,
         dropout and the output layer.

Both sow every block's output (after its pooling) into "intermediates" as "block{i}", and
the last hidden features as "embedding": the layers the similarity job compares.
"""
from typing import Sequence

import flax.linen as nn

from mirjax.models.short_chunk_cnn import global_max_pool, max_along, max_pool


class FCN(nn.Module):
  """FCN back-end: input (batch, frames, features[, channels]) -> logits (batch, n_outputs).

  Attributes
  ----------
  n_outputs : int or None (None: return the (batch, channels[-1]) embedding)
  channels : conv block widths
  pools : (time, frequency) max-pool factors of each block, one per width; a factor larger
    than what is left of an axis is cut to it, so short crops still reach a 1 x 1 map
  dropout : dropout rate before the output layer
  bn_momentum : BatchNorm running-average momentum
  """
  n_outputs: int | None
  channels: Sequence[int] = (32, 64, 64, 128)
  pools: Sequence[Sequence[int]] = ((4, 2), (4, 2), (4, 3), (4, 4))
  dropout: float = 0.5
  bn_momentum: float = 0.99

  @nn.compact
  def __call__(self, x, train: bool = False):
    if len(self.pools) != len(self.channels):
      raise ValueError(f"FCN has one pool per block: {len(self.channels)} channels, "
                       f"{len(self.pools)} pools")
    if x.ndim == 3:
      x = x[..., None]
    norm = lambda **kw: nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, **kw)
    x = norm(axis=(2, 3), name="input_norm")(x)
    for i, (width, (pt, pf)) in enumerate(zip(self.channels, self.pools)):
      x = nn.Conv(width, (3, 3), padding="SAME", use_bias=False, name=f"conv{i}")(x)
      x = nn.relu(norm(name=f"bn{i}")(x))
      x = max_pool(x, max(1, min(pt, x.shape[1])), max(1, min(pf, x.shape[2])))
      self.sow("intermediates", f"block{i}", x)
    x = global_max_pool(x)
    self.sow("intermediates", "embedding", x)
    if self.n_outputs is None:
      return x
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.n_outputs, name="logits")(x)


class SampleCNN(nn.Module):
  """SampleCNN back-end over the 3-sample strided conv's output (batch, frames, filters).

  Attributes
  ----------
  n_outputs : int or None (None: return the (batch, channels[-1]) embedding)
  channels : widths of the length-3 conv blocks, each followed by max-pool by 3 over time
    (a block meets fewer than 3 frames: it does not pool)
  dropout : dropout rate before the output layer
  bn_momentum : BatchNorm running-average momentum
  """
  n_outputs: int | None
  channels: Sequence[int] = (32, 32, 64, 64, 64, 64, 64, 64, 128)
  dropout: float = 0.5
  bn_momentum: float = 0.99

  @nn.compact
  def __call__(self, x, train: bool = False):
    if x.ndim == 4:
      x = x.reshape(*x.shape[:2], -1)
    norm = lambda **kw: nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, **kw)
    x = norm(name="input_norm")(x)  # the first layer's BatchNorm (the front-end has none)
    for i, width in enumerate(self.channels):
      x = nn.Conv(width, (3,), padding="SAME", use_bias=False, name=f"conv{i}")(x)
      x = nn.relu(norm(name=f"bn{i}")(x))
      if x.shape[1] >= 3:
        x = max_pool(x[:, :, None, :], 3, 1)[:, :, 0, :]
      self.sow("intermediates", f"block{i}", x)
    x = nn.relu(norm(name="bn_last")(nn.Conv(self.channels[-1], (1,), use_bias=False, name="conv_last")(x)))
    x = max_along(x, 1)
    self.sow("intermediates", "embedding", x)
    if self.n_outputs is None:
      return x
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.n_outputs, name="logits")(x)
