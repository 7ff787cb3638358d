"""Single-label classification: one softmax over classes, cross-entropy, accuracy."""
import jax
import numpy as np
import optax

from mirjax import evaluation


class Classification:
  """Branch losses and evaluation for single-label classification (e.g. GTZAN genres).

  The model returns {branch: logits (batch, n_classes)}; every branch is trained against the
  integer `label` with mean softmax cross-entropy.
  """
  target = "label"  # the example field holding the ground truth

  def __init__(self, class_names, branches=("classification",)):
    self.class_names = tuple(class_names)
    self.branches = tuple(branches)

  @property
  def n_outputs(self) -> int:
    return len(self.class_names)

  def losses(self, outputs, batch):
    """{branch: scalar mean cross-entropy}; batch["label"] is (batch,) int."""
    labels = batch["label"].astype(np.int32)
    return {b: optax.softmax_cross_entropy_with_integer_labels(outputs[b], labels).mean()
            for b in self.branches}

  def predict(self, outputs):
    """{branch: class probabilities (batch, n_classes)}."""
    return {b: jax.nn.softmax(outputs[b]) for b in self.branches}

  def evaluate(self, labels: np.ndarray, scores: dict) -> dict:
    """Accuracy of each branch, and the macro accuracy over classes (mean recall)."""
    out = {}
    for b in self.branches:
      prefix = "" if len(self.branches) == 1 else f"{b}/"
      pred = np.argmax(scores[b], axis=-1)
      out[prefix + "accuracy"] = evaluation.accuracy(labels, pred)
      out[prefix + "balanced_accuracy"] = evaluation.balanced_accuracy(labels, pred)
    return out
