"""The 1-D convolutional back-end of Dieleman & Schrauwen, "End-to-end learning for music
audio", ICASSP 2014.

The front-end's features (learned raw-audio filters or mel bands) are the input CHANNELS
and every convolution runs over time only: two blocks of 1-D convolution (32 filters of
length 8) + ReLU + max-pooling by 4 over time, a dense layer of 100 ReLU units, and the
output layer. Convolving across the feature index, as the 2-D short-chunk CNN does, assumes
neighbouring features are neighbouring frequencies; learned raw filters have no such order.
"""
from typing import Sequence

import flax.linen as nn

from mirjax.models.short_chunk_cnn import max_pool
from mirjax.errors import ConfigError


def time_pool(x, size):
  """Max-pool (batch, frames, channels) by ``size`` over frames, stride ``size``; a tail of
  fewer than ``size`` frames is dropped (VALID pooling, `short_chunk_cnn.max_pool`)."""
  if x.shape[1] < size:
    raise ConfigError(f"the 1-D back-end got {x.shape[1]} frames where a pooling by {size} needs "
                     f">= {size}: lengthen data.crop_seconds or shorten the front-end's hop")
  return max_pool(x[:, :, None, :], size, 1)[:, :, 0, :]


class Dieleman1D(nn.Module):
  """Dieleman & Schrauwen (2014)'s back-end over front-end features, channels-last.

  Input: (batch, frames, features) or (batch, frames, features, channels); the features (x
  channels) become the channels of a 1-D convolution over frames. Then for each width in
  ``channels``: conv (length ``kernel_size``, SAME padding, bias) + ReLU + max-pool by
  ``pool`` over frames; then flatten (frames' x channels), dense ``dense`` + ReLU, and the
  output layer.

  Flatten, as the paper does, rather than a global pooling: every path mirjax feeds a model
  is a fixed ``data.crop_seconds`` long (training crops, evaluation chunks and
  ``mirjax.tag``'s windows, zero-padded when a clip or file is shorter), and a restored run
  rebuilds its crop from its stored config; so the dense layer keeps the paper's
  time-position-specific weights. Its input size is fixed when the model is initialised:
  other lengths raise a shape error. SAME convolutions keep 1024-sample hops usable with
  3 s crops (47 frames -> 11 -> 2; VALID ones would leave 0).

  ``input_norm`` (default True) keeps one BatchNorm over the input, one mean and variance
  per feature: a per-feature affine standardisation, not the hidden-layer batch norm the
  2014 networks lacked (there is none here). It puts a log-mel front-end (dB, mostly
  negative) and a raw one (log(1 + C y^2) >= 0) on one scale, so a raw-vs-mel comparison
  compares representations, not input scales, and one learning rate suits both.
  Both trained stably without it on the smoke set (AdamW, 200 steps); with it the training
  loss reached 0.42 (raw) and 0.30 (mel) against 0.46 and 0.48.

  Attributes
  ----------
  n_outputs : int or None, number of output logits; None returns the embedding (batch,
    dense) after the hidden dense layer instead (a sub-network)
  channels : sequence of int, filters of each 1-D conv block (default (32, 32))
  kernel_size : int, conv filter length in frames (default 8)
  pool : int, max-pooling size and stride over frames in each block (default 4)
  dense : int, width of the hidden dense layer (default 100)
  input_norm : bool, BatchNorm the input per feature (default True)
  bn_momentum : float, its running-average momentum (default 0.99)

  ``__call__(x, train)`` returns logits (batch, n_outputs) (the tagging task applies the
  sigmoid in its loss), or the embedding. The input BatchNorm's statistics live in the
  ``batch_stats`` collection (running averages used when ``train`` is False).
  """
  n_outputs: int | None
  channels: Sequence[int] = (32, 32)
  kernel_size: int = 8
  pool: int = 4
  dense: int = 100
  input_norm: bool = True
  bn_momentum: float = 0.99

  @nn.compact
  def __call__(self, x, train: bool = False):
    """x (batch, frames, features[, channels]) -> logits (batch, n_outputs)."""
    if x.ndim == 4:
      x = x.reshape(*x.shape[:2], -1)  # features x channels -> channels
    if self.input_norm:
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       name="input_norm")(x)  # statistics over batch and frames, per feature
    for i, width in enumerate(self.channels):
      x = nn.Conv(width, (self.kernel_size,), padding="SAME", name=f"conv{i}")(x)
      x = time_pool(nn.relu(x), self.pool)
      self.sow("intermediates", f"block{i}", x)  # each block's output: the similarity job's layers
    x = x.reshape(x.shape[0], -1)  # (frames' x channels): the fixed-length excerpt, flattened
    x = nn.relu(nn.Dense(self.dense, name="dense")(x))
    self.sow("intermediates", "embedding", x)
    if self.n_outputs is None:
      return x
    return nn.Dense(self.n_outputs, name="logits")(x)
