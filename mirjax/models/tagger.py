"""A one-branch audio model: any front-end followed by any back-end (tagging or classification)."""
import flax.linen as nn

from mirjax.inputs import audio_of


class Tagger(nn.Module):
  """Front-end then back-end, as a one-branch model.

  Attributes
  ----------
  frontend : nn.Module, (batch, time) audio -> (batch, frames, features[, channels])
  backend : nn.Module, features -> logits (batch, n_outputs); called as ``backend(x, train)``
  branch : str, the name of the one output branch (default "tagging")

  ``__call__(audio, train)`` returns ``{branch: logits}``: a dict of branch outputs, since
  the training system treats every model as multi-branch.
  """
  frontend: nn.Module
  backend: nn.Module
  branch: str = "tagging"

  def __call__(self, inputs, train: bool = False):
    """inputs {"audio": (batch, time) float32} (or that array) -> {branch: logits (batch, n_outputs)}."""
    return {self.branch: self.backend(self.frontend(audio_of(inputs), train), train)}

  def frequency_responses(self, n_freqs: int = 512) -> dict:
    """The front-end's `frequency_responses` (current filters)."""
    return self.frontend.frequency_responses(n_freqs)
