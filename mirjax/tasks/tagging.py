"""Multi-label tagging: one sigmoid output per tag, binary cross-entropy, ROC/PR-AUC."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mirjax import evaluation
from mirjax.tasks.common import final_scores, masked_mean, prediction_branches


class Tagging:
  """Branch losses and evaluation for multi-label tagging.

  The model returns {branch: logits (batch, n_tags)}; every branch is trained against
  the same multi-hot `tags` with mean binary cross-entropy over examples and tags. The
  prediction is the mean of the probabilities of `prediction_branches`.
  """
  target = "tags"  # the example field holding the ground truth

  def __init__(self, tag_names, branches=("tagging",), predict_from=()):
    self.tag_names = tuple(tag_names)
    self.branches = tuple(branches)
    self.predict_from = prediction_branches(self.branches, predict_from)

  @property
  def n_outputs(self) -> int:
    return len(self.tag_names)

  def losses(self, outputs, batch, step=None):  # pylint: disable=unused-argument
    """{branch: scalar mean BCE}; batch["tags"] is (batch, n_tags) in {0, 1}; examples
    where an optional batch["mask"] is false are left out."""
    labels = batch["tags"].astype(jnp.float32)
    return {b: masked_mean(jnp.mean(optax.sigmoid_binary_cross_entropy(outputs[b], labels), -1),
                           batch.get("mask")) for b in self.branches}

  def predict(self, outputs):
    """{branch: tag probabilities (batch, n_tags)}."""
    return {b: jax.nn.sigmoid(outputs[b]) for b in self.branches}

  def evaluate(self, labels: np.ndarray, scores: dict) -> dict:
    """Macro ROC-AUC and PR-AUC over tags (and per tag) of the prediction, and of each
    branch as "<branch>/roc_auc", ... when there are several.

    Tags with a single class among `labels` have no AUC; they are left out of the macro
    average, counted in `tags_without_both_classes` and named in an
    `evaluation.UndefinedMetricWarning`.
    """
    out = {}
    skipped = evaluation.single_class_tags(labels)
    predictions = [("", final_scores(scores, self.predict_from))]
    if len(self.branches) > 1:
      predictions += [(b, scores[b]) for b in self.branches]
    for name, s in predictions:
      prefix, of = (f"{name}/", f" (branch {name})") if name else ("", "")
      if np.all(np.isfinite(s)):
        roc = evaluation.per_tag_roc_auc(labels, s)
        pr = evaluation.per_tag_average_precision(labels, s)
      else:  # a diverged model: report NaN (null in results.json) rather than end the run
        warnings.warn(f"{int(np.sum(~np.isfinite(s)))} scores of the prediction{of} are NaN or "
                      "infinite (the model diverged?): its ROC-AUC and PR-AUC are NaN", RuntimeWarning)
        roc = pr = np.full(len(self.tag_names), np.nan)
      out[prefix + "roc_auc"] = evaluation.macro_average(roc, skipped, self.tag_names, "ROC-AUC" + of)
      out[prefix + "pr_auc"] = evaluation.macro_average(pr, skipped, self.tag_names, "PR-AUC" + of)
      out[prefix + "per_tag_roc_auc"] = dict(zip(self.tag_names, map(float, roc)))
      out[prefix + "per_tag_pr_auc"] = dict(zip(self.tag_names, map(float, pr)))
    out["tags_without_both_classes"] = int(np.sum(skipped))
    return out
