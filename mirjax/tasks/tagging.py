"""Multi-label tagging: one sigmoid output per tag, binary cross-entropy, ROC/PR-AUC."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mirjax import evaluation


class Tagging:
  """Branch losses and evaluation for multi-label tagging.

  The model returns {branch: logits (batch, n_tags)}; every branch is trained against
  the same multi-hot `tags` with mean binary cross-entropy over examples and tags.
  """
  target = "tags"  # the example field holding the ground truth

  def __init__(self, tag_names, branches=("tagging",)):
    self.tag_names = tuple(tag_names)
    self.branches = tuple(branches)

  @property
  def n_outputs(self) -> int:
    return len(self.tag_names)

  def losses(self, outputs, batch):
    """{branch: scalar mean BCE}; batch["tags"] is (batch, n_tags) in {0, 1}."""
    labels = batch["tags"].astype(jnp.float32)
    return {b: jnp.mean(optax.sigmoid_binary_cross_entropy(outputs[b], labels)) for b in self.branches}

  def predict(self, outputs):
    """{branch: tag probabilities (batch, n_tags)}."""
    return {b: jax.nn.sigmoid(outputs[b]) for b in self.branches}

  def evaluate(self, labels: np.ndarray, scores: dict) -> dict:
    """Host-side metrics for each branch: macro ROC-AUC and PR-AUC over tags.

    Tags with a single class among `labels` have no AUC; they are left out of the macro
    average and counted in `tags_without_both_classes`.
    """
    out = {}
    for b in self.branches:
      roc = evaluation.per_tag_roc_auc(labels, scores[b])
      pr = evaluation.per_tag_average_precision(labels, scores[b])
      prefix = "" if len(self.branches) == 1 else f"{b}/"
      out[prefix + "roc_auc"] = float(np.nanmean(roc))
      out[prefix + "pr_auc"] = float(np.nanmean(pr))
      out[prefix + "per_tag_roc_auc"] = dict(zip(self.tag_names, map(float, roc)))
      out[prefix + "per_tag_pr_auc"] = dict(zip(self.tag_names, map(float, pr)))
    out["tags_without_both_classes"] = int(np.sum(np.isnan(roc)))
    return out
