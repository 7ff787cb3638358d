"""Single-label classification: one softmax over classes, cross-entropy, accuracy."""
import jax
import numpy as np
import optax

from mirjax import evaluation
from mirjax.tasks.common import final_scores, masked_mean, prediction_branches


class Classification:
  """Branch losses and evaluation for single-label classification (e.g. GTZAN genres).

  The model returns {branch: logits (batch, n_classes)}; every branch is trained against the
  integer `label` with mean softmax cross-entropy. The prediction is the mean of the
  probabilities of `prediction_branches` (the joint branch of a multi-view model, the mean
  of its view branches for late fusion, the one branch of a single-branch model).
  """
  target = "label"  # the example field holding the ground truth

  def __init__(self, class_names, branches=("classification",), predict_from=()):
    self.class_names = tuple(class_names)
    self.branches = tuple(branches)
    self.predict_from = prediction_branches(self.branches, predict_from)

  @property
  def n_outputs(self) -> int:
    return len(self.class_names)

  def losses(self, outputs, batch, step=None):  # pylint: disable=unused-argument
    """{branch: scalar mean cross-entropy}; batch["label"] is (batch,) int; examples where
    an optional batch["mask"] is false are left out."""
    labels = batch["label"].astype(np.int32)
    return {b: masked_mean(optax.softmax_cross_entropy_with_integer_labels(outputs[b], labels),
                           batch.get("mask")) for b in self.branches}

  def predict(self, outputs):
    """{branch: class probabilities (batch, n_classes)}."""
    return {b: jax.nn.softmax(outputs[b]) for b in self.branches}

  def evaluate(self, labels: np.ndarray, scores: dict) -> dict:
    """Accuracy and balanced accuracy (mean per-class recall) of the prediction, and of each
    branch as "<branch>/accuracy" when there are several."""
    out = {}
    for name, s in self._predictions(scores):
      prefix = f"{name}/" if name else ""
      out[prefix + "accuracy"] = evaluation.accuracy(labels, s)
      out[prefix + "balanced_accuracy"] = evaluation.balanced_accuracy(labels, s)
    return out

  def _predictions(self, scores):
    yield "", final_scores(scores, self.predict_from)
    if len(self.branches) > 1:
      yield from ((b, scores[b]) for b in self.branches)
