"""A multilayer perceptron on summary features (inputs["features"], mirjax/data/features.py):
the tagger of Dieleman & Schrauwen (ISMIR 2013) on their k-means features."""
import flax.linen as nn


class MLPTagger(nn.Module):
  """features (batch, D) -> dense `hidden` + ReLU -> dropout -> dense `n_outputs` logits.

  The hidden layer is sown as "embedding" (for the embed job); ``__call__`` returns
  ``{branch: logits}`` like every model.
  """
  n_outputs: int
  hidden: int = 512
  dropout: float = 0.5
  branch: str = "tagging"

  @nn.compact
  def __call__(self, inputs, train: bool = False):
    if "features" not in inputs:
      raise ValueError(f"model 'mlp' reads inputs['features'] (a feature dataset); the batch has {sorted(inputs)}")
    h = nn.relu(nn.Dense(self.hidden, name="hidden")(inputs["features"]))
    self.sow("intermediates", "embedding", h)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return {self.branch: nn.Dense(self.n_outputs, name="dense")(h)}
