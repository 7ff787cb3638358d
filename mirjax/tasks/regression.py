"""Regression of real vectors: e.g. a song's WMF latent factors predicted from its audio
(content-based recommendation, mirjax/jobs/recommend.py)."""
import jax.numpy as jnp
import numpy as np

from mirjax.errors import ConfigError
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


LOSSES = ("mse", "wpe")


def weighted_prediction_error(y, gram, b, c):
  """(batch,) y^T A y - 2 b^T y + c for predictions y (batch, k) and each example's terms
  A (batch, k, k), b (batch, k), c (batch,) (the WPE of van den Oord et al. 2013: see Regression)."""
  y = y.astype(jnp.float32)
  return jnp.einsum("bi,bij,bj->b", y, gram, y) - 2.0 * jnp.einsum("bi,bi->b", b, y) + c


class Regression:
  """Branch losses and evaluation for regressing the example's `factors` (a float vector).

  The model returns {branch: outputs (batch, dim)}; every branch is trained with `loss`:
    "mse"  the mean squared error over examples and dimensions (van den Oord et al., "Deep
           content-based music recommendation", NIPS 2013, regress WMF factors with it);
    "wpe"  their weighted prediction error: the WMF objective's error term of the song
           with its factors replaced by the prediction y, sum_u c_ui (p_ui - x_u^T y)^2
           over the training users, divided by their number. It is a quadratic in y,
           y^T A y - 2 b^T y + c, whose terms every example carries ("wpe_gram" A, "wpe_b"
           b, "wpe_c" c: mirjax/data/song_factors.py `wpe_terms`), so no user factors
           travel with a batch. It weighs the errors users would notice.
  The prediction is the mean of the outputs of `prediction_branches`; evaluation reports
  the mean squared error and R^2 against the factors whichever loss trained it.
  """
  target = "factors"  # the example field holding the ground truth

  def __init__(self, dim: int, branches=("regression",), predict_from=(), loss: str = "mse"):
    if loss not in LOSSES:
      raise ConfigError(f"task.loss={loss!r}: a regression is trained with one of {LOSSES}")
    self.dim = int(dim)
    self.branches = tuple(branches)
    self.predict_from = prediction_branches(self.branches, predict_from)
    self.loss = loss
    self.extra_targets = ("wpe_gram", "wpe_b", "wpe_c") if loss == "wpe" else ()

  @property
  def n_outputs(self) -> int:
    return self.dim

  def losses(self, outputs, batch, step=None):  # pylint: disable=unused-argument
    """{branch: scalar loss}; examples where an optional batch["mask"] is false are left out."""
    if self.loss == "wpe":
      return {b: masked_mean(weighted_prediction_error(outputs[b], batch["wpe_gram"], batch["wpe_b"],
                                                       batch["wpe_c"]), batch.get("mask")) for b in self.branches}
    y = batch["factors"].astype(jnp.float32)
    return {b: masked_mean(jnp.mean((outputs[b] - y) ** 2, -1), batch.get("mask")) for b in self.branches}

  def predict(self, outputs):
    return {b: outputs[b] for b in self.branches}

  def evaluate(self, labels: np.ndarray, scores: dict) -> dict:
    """"mse" (lower is better; `train.select_by` minimises it) and "r2" of the prediction."""
    p = final_scores(scores, self.predict_from)
    return {"mse": mean_squared_error(labels, p), "r2": r2(labels, p)}
