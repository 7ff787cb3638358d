"""Regression of real vectors: e.g. a song's WMF latent factors predicted from its audio
(content-based recommendation, mirjax/jobs/recommend.py)."""
import jax.numpy as jnp
import numpy as np

from mirjax.tasks.common import final_scores, masked_mean, prediction_branches


def mean_squared_error(y, p) -> float:
  """Mean over examples and dimensions of (y - p)^2."""
  y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
  return float(np.mean((y - p) ** 2))


def r2(y, p) -> float:
  """Coefficient of determination 1 - SS_res / SS_tot per output dimension, averaged over
  dimensions (scikit-learn's r2_score, multioutput="uniform_average"); a constant
  dimension scores 1 if predicted exactly, else 0."""
  y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
  res = np.sum((y - p) ** 2, axis=0)
  tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
  with np.errstate(divide="ignore", invalid="ignore"):
    per_dim = np.where(tot > 0, 1.0 - res / np.where(tot > 0, tot, 1.0), np.where(res == 0, 1.0, 0.0))
  return float(np.mean(per_dim))


class Regression:
  """Branch losses and evaluation for regressing the example's `factors` (a float vector).

  The model returns {branch: outputs (batch, dim)}; every branch is trained with the mean
  squared error over examples and dimensions (van den Oord et al., "Deep content-based
  music recommendation", NIPS 2013, regress WMF factors with it). The prediction is the
  mean of the outputs of `prediction_branches`.
  """
  target = "factors"  # the example field holding the ground truth

  def __init__(self, dim: int, branches=("regression",), predict_from=()):
    self.dim = int(dim)
    self.branches = tuple(branches)
    self.predict_from = prediction_branches(self.branches, predict_from)

  @property
  def n_outputs(self) -> int:
    return self.dim

  def losses(self, outputs, batch, step=None):  # pylint: disable=unused-argument
    """{branch: scalar MSE}; examples where an optional batch["mask"] is false are left out."""
    y = batch["factors"].astype(jnp.float32)
    return {b: masked_mean(jnp.mean((outputs[b] - y) ** 2, -1), batch.get("mask")) for b in self.branches}

  def predict(self, outputs):
    return {b: outputs[b] for b in self.branches}

  def evaluate(self, labels: np.ndarray, scores: dict) -> dict:
    """"mse" (lower is better; `train.select_by` minimises it) and "r2" of the prediction."""
    p = final_scores(scores, self.predict_from)
    return {"mse": mean_squared_error(labels, p), "r2": r2(labels, p)}
