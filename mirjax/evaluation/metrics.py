"""Retrieval and classification metrics on host (numpy) arrays.

Labels of the ranking metrics must be binary (0/1 or False/True) and scores finite: other
input raises ValueError, as in scikit-learn, rather than giving a plausible number.
Per-tag metrics return NaN for a tag (column) whose labels hold a single class, where
ROC-AUC is undefined; the ``macro_*`` averages skip those tags and say so with an
`UndefinedMetricWarning` naming them (`single_class_tags` gives the mask).
"""
import warnings

import numpy as np


class UndefinedMetricWarning(UserWarning):
  """A macro average left out tags whose metric is undefined (a single class present)."""


def _check_labels(y_true, name="y_true"):
  """Raise unless every label is 0/1 or False/True (soft or -1/+1 labels are refused)."""
  if y_true.dtype == bool:
    return
  if y_true.dtype.kind not in "iuf":
    raise ValueError(f"{name} must hold binary labels, only 0/1 or False/True; got dtype {y_true.dtype}")
  odd = np.unique(y_true[~np.isin(y_true, (0, 1))])
  if odd.size:
    more = f" and {odd.size - 5} more" if odd.size > 5 else ""
    raise ValueError(f"{name} must hold binary labels, only 0/1 or False/True; found the values "
                     f"{odd[:5].tolist()}{more}")


def _check_scores(y_score, name="y_score"):
  """Raise if any score is NaN or infinite (their rank would be arbitrary)."""
  bad = ~np.isfinite(y_score)
  if bad.any():
    raise ValueError(f"{name} holds {int(bad.sum())} NaN or infinite values (the first at flat index "
                     f"{int(np.flatnonzero(bad)[0])}); scores must be finite")


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
  _check_labels(y_true)
  _check_scores(y_score)
  return y_true.astype(bool), y_score


def roc_auc(y_true, y_score):
  """Area under the ROC curve, tie-aware: the Mann-Whitney U statistic over n+ n-.

  Parameters
  ----------
  y_true : array (n,), binary labels: 0/1 or False/True (1 = positive)
  y_score : array (n,), finite scores, higher = more positive; tied scores count one half

  Returns
  -------
  float in [0, 1]; raises ValueError when only one class is present, a label is not
  binary or a score is not finite
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
  y_true : array (n,), binary labels: 0/1 or False/True (1 = positive)
  y_score : array (n,), finite scores, higher = more positive

  Returns
  -------
  float in [0, 1]; NaN when there is no positive label; raises ValueError as `roc_auc`
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
  Y = np.asarray(Y)
  _check_labels(Y, "Y")
  Y = Y.astype(bool)
  n_pos = Y.sum(axis=0)
  return (n_pos == 0) | (n_pos == Y.shape[0])


def _per_tag(metric, Y, S):
  Y, S = np.asarray(Y), np.asarray(S)
  if Y.shape != S.shape or Y.ndim != 2:
    raise ValueError(f"Y {Y.shape} and S {S.shape} must be equal 2-D (n, n_tags)")
  _check_scores(np.asarray(S, np.float64), "S")  # skipped columns too, as scikit-learn
  skip = single_class_tags(Y)
  return np.array([np.nan if skip[j] else metric(Y[:, j], S[:, j]) for j in range(Y.shape[1])])


def per_tag_roc_auc(Y, S):
  """ROC-AUC of each column of ``Y``, ``S`` (n, n_tags); NaN for single-class columns."""
  return _per_tag(roc_auc, Y, S)


def per_tag_average_precision(Y, S):
  """Average precision of each column of ``Y``, ``S`` (n, n_tags); NaN for single-class columns."""
  return _per_tag(average_precision, Y, S)


def macro_average(values, skipped, tag_names=None, metric="metric"):
  """Mean of per-tag ``values`` over the tags not ``skipped``, warning which were left out.

  Parameters
  ----------
  values : array (n_tags,), per-tag metric (NaN where ``skipped``)
  skipped : bool array (n_tags,), e.g. `single_class_tags` of the labels
  tag_names : sequence of n_tags names, or None to name tags by column index
  metric : str, the metric's name in the warning

  Returns
  -------
  float; NaN when every tag is skipped. Warns `UndefinedMetricWarning` with the count and
  names of the skipped tags when there are any.
  """
  values, skipped = np.asarray(values, np.float64), np.asarray(skipped, bool)
  if skipped.any():
    names = [repr(tag_names[j]) if tag_names is not None else str(j) for j in np.flatnonzero(skipped)]
    what = "tags" if tag_names is not None else "tag columns"
    warnings.warn(f"macro {metric} left out {len(names)} of {skipped.size} tags with a single class "
                  f"(metric undefined), {what}: {', '.join(names)}", UndefinedMetricWarning, stacklevel=2)
  kept = values[~skipped]
  return float(kept.mean()) if kept.size else float("nan")


def macro_roc_auc(Y, S, tag_names=None):
  """Mean ROC-AUC over the tags with both classes present; warns naming the rest.

  Parameters
  ----------
  Y : array (n, n_tags), binary labels
  S : array (n, n_tags), finite scores
  tag_names : optional n_tags names, used in the warning (default: column indices)

  Returns
  -------
  float; NaN when no tag has both classes (see `macro_average`)
  """
  return macro_average(per_tag_roc_auc(Y, S), single_class_tags(Y), tag_names, "ROC-AUC")


def macro_pr_auc(Y, S, tag_names=None):
  """Mean average precision over the tags with both classes present, as `macro_roc_auc`."""
  return macro_average(per_tag_average_precision(Y, S), single_class_tags(Y), tag_names, "PR-AUC")


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
