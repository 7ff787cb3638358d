"""Multi-view network (Phan et al., "Multi-view audio and music classification", ICASSP 2021).

Each view is a low-level representation of the same audio (a front-end: log-mel,
gammatone, constant-Q, raw waveform, ...) with a sub-network of its own that maps it to an
embedding. A joint head classifies the concatenated embeddings and one head per view
classifies that view's embedding alone, so the model has up to 1 + n_views output
branches, each with its own loss: the training system hands their per-branch gradients to
the optimizer, whose first link weighs them (uniformly, statically, or by gradient
blending). The same module gives every baseline: one view alone, the concatenation
network (joint head only) and late fusion (view heads only).
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from mirjax.errors import ConfigError
from mirjax.inputs import audio_of

JOINT = "joint"  # the branch on the concatenated embedding


class MultiView(nn.Module):
  """Views -> sub-networks -> {branch: logits}.

  Attributes
  ----------
  views : names of the views, one per front-end / encoder, in order
  frontends : one front-end module per view, (batch, time) -> (batch, frames, features[, ch])
  encoders : one sub-network per view, features -> embedding (batch, dim); called as
    ``encoder(x, train)``
  branches : the heads to build: "joint" and/or view names (the task's branches, in order)
  n_outputs : int, logits per head
  dropout : float, dropout rate on each head's input (default 0.5)

  ``__call__(audio, train)`` returns {branch: logits (batch, n_outputs)}.
  """
  views: Sequence[str]
  frontends: Sequence[nn.Module]
  encoders: Sequence[nn.Module]
  branches: Sequence[str]
  n_outputs: int
  dropout: float = 0.5

  def setup(self):
    unknown = set(self.branches) - set(self.views) - {JOINT}
    if unknown:
      raise ConfigError(f"branches {sorted(unknown)} are neither {JOINT!r} nor a view of {list(self.views)}")
    self.heads = {b: nn.Dense(self.n_outputs, name=f"head_{b}") for b in self.branches}
    self.drop = nn.Dropout(self.dropout)

  def embeddings(self, inputs, train: bool = False) -> dict:
    """{view: embedding (batch, dim)} of every view, all computed from inputs["audio"]."""
    audio = audio_of(inputs)
    return {v: enc(fe(audio, train), train)
            for v, fe, enc in zip(self.views, self.frontends, self.encoders)}

  def __call__(self, inputs, train: bool = False):
    emb = self.embeddings(inputs, train)
    out = {}
    for b in self.branches:
      x = jnp.concatenate([emb[v] for v in self.views], axis=-1) if b == JOINT else emb[b]
      out[b] = self.heads[b](self.drop(x, deterministic=not train))
    return out

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    """Each view's front-end responses, keys prefixed by the view ("cqt/filterbank", ...)."""
    return {f"{v}/{k}": r for v, fe in zip(self.views, self.frontends)
            for k, r in fe.frequency_responses(n_freqs).items()}
