"""Retrieval and classification metrics on host (numpy) arrays.

Per-tag metrics return NaN for a tag (column) whose labels hold a single class, where
ROC-AUC is undefined; the ``macro_*`` averages skip those tags and `single_class_tags`
says which they were, so a caller can report how many were excluded.
"""
import numpy as np


def _average_ranks(x):
  """1-based ranks of ``x`` with ties given the mean of the ranks they span."""
  order = np.argsort(x, kind="mergesort")
  _, inverse, counts = np.unique(x[order], return_inverse=True, return_counts=True)
  ends = np.cumsum(counts)  # rank of the last member of each tie group
  ranks = np.empty(len(x), np.float64)
  ranks[order] = (ends - (counts - 1) / 2.0)[inverse]
  return ranks


def _binary(y_true, y_score):
  y_true = np.asarray(y_true).ravel()
  y_score = np.asarray(y_score, np.float64).ravel()
  if y_true.shape != y_score.shape:
    raise ValueError(f"y_true {y_true.shape} and y_score {y_score.shape} differ in shape")
  return y_true.astype(bool), y_score


def roc_auc(y_true, y_score):
  """Area under the ROC curve, tie-aware: the Mann-Whitney U statistic over n+ n-.

  Parameters
  ----------
  y_true : array (n,), binary labels (nonzero = positive)
  y_score : array (n,), scores, higher = more positive; tied scores count one half

  Returns
  -------
  float in [0, 1]; raises ValueError when only one class is present
  """
  y_true, y_score = _binary(y_true, y_score)
  n_pos = int(y_true.sum())
  n_neg = y_true.size - n_pos
  if n_pos == 0 or n_neg == 0:
    raise ValueError("ROC-AUC is undefined when only one class is present")
  rank_sum = _average_ranks(y_score)[y_true].sum()
  return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))  # AUC = U / (n+ n-)


def average_precision(y_true, y_score):
  """Average precision, ``sum_n (R_n - R_{n-1}) P_n``, as scikit-learn defines it.

  Thresholds are the distinct scores in decreasing order, so tied scores enter together
  (no interpolation).

  Parameters
  ----------
  y_true : array (n,), binary labels (nonzero = positive)
  y_score : array (n,), scores, higher = more positive

  Returns
  -------
  float in [0, 1]; NaN when there is no positive label
  """
  y_true, y_score = _binary(y_true, y_score)
  if not y_true.any():
    return float("nan")
  order = np.argsort(-y_score, kind="mergesort")
  y_sorted, s_sorted = y_true[order], y_score[order]
  last = np.r_[np.flatnonzero(np.diff(s_sorted)), y_sorted.size - 1]  # end of each tie group
  tps = np.cumsum(y_sorted)[last]
  precision = tps / (last + 1.0)
  recall_gain = np.diff(np.r_[0, tps]) / tps[-1]
  return float(np.sum(recall_gain * precision))  # AP = sum_n (R_n - R_{n-1}) P_n


def single_class_tags(Y):
  """Boolean mask (n_tags,) of the columns of ``Y`` (n, n_tags) holding one class only."""
  Y = np.asarray(Y).astype(bool)
  n_pos = Y.sum(axis=0)
  return (n_pos == 0) | (n_pos == Y.shape[0])


def _per_tag(metric, Y, S):
  Y, S = np.asarray(Y), np.asarray(S)
  if Y.shape != S.shape or Y.ndim != 2:
    raise ValueError(f"Y {Y.shape} and S {S.shape} must be equal 2-D (n, n_tags)")
  skip = single_class_tags(Y)
  return np.array([np.nan if skip[j] else metric(Y[:, j], S[:, j]) for j in range(Y.shape[1])])


def per_tag_roc_auc(Y, S):
  """ROC-AUC of each column of ``Y``, ``S`` (n, n_tags); NaN for single-class columns."""
  return _per_tag(roc_auc, Y, S)


def per_tag_average_precision(Y, S):
  """Average precision of each column of ``Y``, ``S`` (n, n_tags); NaN for single-class columns."""
  return _per_tag(average_precision, Y, S)


def _nanmean(values):
  valid = values[~np.isnan(values)]
  return float(valid.mean()) if valid.size else float("nan")


def macro_roc_auc(Y, S):
  """Mean ROC-AUC over the tags with both classes present (`single_class_tags` lists the rest).

  Parameters
  ----------
  Y : array (n, n_tags), binary labels
  S : array (n, n_tags), scores

  Returns
  -------
  float; NaN when no tag has both classes
  """
  return _nanmean(per_tag_roc_auc(Y, S))


def macro_pr_auc(Y, S):
  """Mean average precision over the tags with both classes present, as `macro_roc_auc`."""
  return _nanmean(per_tag_average_precision(Y, S))


def accuracy(y_true, y_pred):
  """Fraction of correct predictions.

  Parameters
  ----------
  y_true : array (n,), integer class labels
  y_pred : array (n,) of labels, or (n, n_classes) of scores/logits (argmax is taken)

  Returns
  -------
  float in [0, 1]
  """
  y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
  if y_pred.ndim == y_true.ndim + 1:
    y_pred = np.argmax(y_pred, axis=-1)
  if y_pred.shape != y_true.shape:
    raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
  return float(np.mean(y_pred == y_true))


def balanced_accuracy(y_true, y_pred):
  """Mean over the classes present in ``y_true`` of the fraction of each class predicted
  right (mean recall), as scikit-learn's ``balanced_accuracy_score``.

  Parameters: as `accuracy`. Returns float in [0, 1].
  """
  y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
  if y_pred.ndim == y_true.ndim + 1:
    y_pred = np.argmax(y_pred, axis=-1)
  if y_pred.shape != y_true.shape:
    raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
  return float(np.mean([np.mean(y_pred[y_true == k] == k) for k in np.unique(y_true)]))
