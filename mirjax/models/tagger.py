"""A tagging model: any front-end followed by any back-end, one output branch."""
import flax.linen as nn


class Tagger(nn.Module):
  """Front-end then back-end, as a one-branch model.

  Attributes
  ----------
  frontend : nn.Module, (batch, time) audio -> (batch, frames, features[, channels])
  backend : nn.Module, features -> logits (batch, n_outputs); called as ``backend(x, train)``

  ``__call__(audio, train)`` returns ``{"tagging": logits}``: a dict of branch outputs, since
  the training system treats every model as multi-branch.
  """
  frontend: nn.Module
  backend: nn.Module

  def __call__(self, audio, train: bool = False):
    """audio (batch, time) float32 -> {"tagging": logits (batch, n_outputs)}."""
    return {"tagging": self.backend(self.frontend(audio, train), train)}

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    """The front-end's `frequency_responses` (current filters)."""
    return self.frontend.frequency_responses(n_freqs)
