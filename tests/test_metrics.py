"""mirjax.evaluation against scikit-learn to 1e-10, on data with ties and one-class tags;
input scikit-learn refuses (non-finite scores, non-binary labels) raises here too."""
import re

import numpy as np
import pytest
from sklearn import metrics as skm

from mirjax import evaluation
from mirjax.tasks.tagging import Tagging

TOL = 1e-10


def tagged_data(seed, n=80, n_tags=12):
  """Labels with varied tag frequencies and scores quantised to 5 levels (many ties)."""
  rng = np.random.default_rng(seed)
  Y = (rng.random((n, n_tags)) < rng.uniform(0.05, 0.6, n_tags)).astype(np.int64)
  S = np.round(rng.random((n, n_tags)) * 4 + 0.5 * Y) / 4
  Y[:, 0] = 0  # no positive
  Y[:, 1] = 1  # no negative
  return Y, S


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dtype", [np.int64, bool, np.float32, np.uint8])
def test_binary_metrics_match_sklearn(seed, dtype):
  rng = np.random.default_rng(seed)
  for _ in range(20):
    n = int(rng.integers(2, 60))
    y = rng.integers(0, 2, n).astype(dtype)
    s = rng.integers(0, 4, n) / 3.0 if rng.random() < 0.7 else rng.standard_normal(n)
    if y.min() == y.max():
      continue
    assert abs(evaluation.roc_auc(y, s) - skm.roc_auc_score(y, s)) < TOL
    assert abs(evaluation.average_precision(y, s) - skm.average_precision_score(y, s)) < TOL


@pytest.mark.parametrize("seed", range(3))
def test_macro_metrics_match_sklearn(seed):
  Y, S = tagged_data(seed)
  one_class = evaluation.single_class_tags(Y)
  assert one_class[:2].all() and one_class.sum() >= 2
  keep = ~one_class
  auc = evaluation.per_tag_roc_auc(Y, S)
  ap = evaluation.per_tag_average_precision(Y, S)
  np.testing.assert_array_equal(np.isnan(auc), one_class)
  np.testing.assert_array_equal(np.isnan(ap), one_class)
  ref_auc = skm.roc_auc_score(Y[:, keep], S[:, keep], average=None)
  for y in (Y.astype(bool), Y.astype(np.float64)):  # the same values from bool and 0./1. labels
    np.testing.assert_array_equal(evaluation.per_tag_roc_auc(y, S), auc)
  ref_ap = skm.average_precision_score(Y[:, keep], S[:, keep], average=None)
  np.testing.assert_allclose(auc[keep], ref_auc, rtol=0, atol=TOL)
  np.testing.assert_allclose(ap[keep], ref_ap, rtol=0, atol=TOL)
  macro_auc = skm.roc_auc_score(Y[:, keep], S[:, keep], average="macro")
  macro_ap = skm.average_precision_score(Y[:, keep], S[:, keep], average="macro")
  with pytest.warns(evaluation.UndefinedMetricWarning, match=f"left out {one_class.sum()} of 12"):
    assert abs(evaluation.macro_roc_auc(Y, S) - macro_auc) < TOL
  with pytest.warns(evaluation.UndefinedMetricWarning, match=f"left out {one_class.sum()} of 12"):
    assert abs(evaluation.macro_pr_auc(Y, S) - macro_ap) < TOL


def test_undefined_cases():
  with pytest.raises(ValueError):
    evaluation.roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
  assert np.isnan(evaluation.average_precision([0, 0], [0.3, 0.1]))
  assert evaluation.average_precision([1, 1], [0.3, 0.1]) == 1.0
  Y = np.zeros((4, 3))
  with pytest.warns(evaluation.UndefinedMetricWarning, match="left out 3 of 3"):
    assert np.isnan(evaluation.macro_roc_auc(Y, np.ones((4, 3))))
  assert evaluation.single_class_tags(Y).all()


BAD_SCORES = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("bad", BAD_SCORES)
def test_non_finite_scores_raise(bad):
  y, s = np.array([0, 1, 0, 1, 1]), np.array([0.1, 0.9, 0.3, bad, 0.4])
  for fn in (skm.roc_auc_score, skm.average_precision_score):  # scikit-learn refuses them
    with pytest.raises(ValueError, match="Input contains"):
      fn(y, s)
  for fn in (evaluation.roc_auc, evaluation.average_precision):
    with pytest.raises(ValueError, match="NaN or infinite"):
      fn(y, s)
  with pytest.raises(ValueError, match=r"y_score holds 1 NaN or infinite value.*index 3.*must be finite"):
    evaluation.roc_auc(y, s)
  Y, S = np.stack([y, 1 - y, np.zeros(5, int)], 1), np.stack([s, s, s], 1)
  S[3, 0] = 0.5  # the one bad score is in a single-class column, which is still checked
  for fn in (evaluation.per_tag_roc_auc, evaluation.per_tag_average_precision,
             evaluation.macro_roc_auc, evaluation.macro_pr_auc):
    with pytest.raises(ValueError, match=r"S holds 2 NaN or infinite values"):
      fn(Y, S)


@pytest.mark.parametrize("labels,found", [
    ([-1, 1, -1, 1, 1], "[-1]"),  # {-1, +1}
    ([0.0, 1.0, 0.2, 0.9, 1.0], "[0.2, 0.9]"),  # soft labels
    ([0, 2, 0, 2, 1], "[2]"),
    ([0, 1, np.nan, 1, 0], "[nan]"),
])
def test_non_binary_labels_raise(labels, found):
  s = np.array([0.1, 0.9, 0.3, 0.8, 0.4])
  for fn in (evaluation.roc_auc, evaluation.average_precision):
    with pytest.raises(ValueError, match=re.escape(f"y_true must hold binary labels, only 0/1 or "
                                                   f"False/True; found the values {found}")):
      fn(labels, s)
  Y = np.stack([np.asarray(labels), np.array([0, 1, 0, 1, 0])], 1)
  for fn in (evaluation.per_tag_roc_auc, evaluation.per_tag_average_precision,
             evaluation.macro_roc_auc, evaluation.macro_pr_auc, lambda Y, S: evaluation.single_class_tags(Y)):
    with pytest.raises(ValueError, match=re.escape("Y must hold binary labels")):
      fn(Y, np.stack([s, s], 1))
  with pytest.raises(ValueError, match="got dtype <U1"):
    evaluation.roc_auc(["a", "b", "a", "b", "b"], s)


def test_macro_average_warns_naming_the_skipped_tags():
  Y = np.array([[0, 1, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0], [1, 1, 0, 0]])
  S = np.array([[0.2, 0.5, 0.9, 0.1], [0.8, 0.5, 0.1, 0.2], [0.1, 0.5, 0.7, 0.3], [0.9, 0.5, 0.3, 0.4]])
  with pytest.warns(evaluation.UndefinedMetricWarning) as record:
    assert evaluation.macro_roc_auc(Y, S) == 1.0
  assert len(record) == 1
  assert str(record[0].message) == ("macro ROC-AUC left out 2 of 4 tags with a single class (metric "
                                    "undefined), tag columns: 1, 3")
  names = ("rock", "loud", "quiet", "slow")
  with pytest.warns(evaluation.UndefinedMetricWarning, match=r"PR-AUC left out 2 of 4 .*tags: 'loud', 'slow'$"):
    assert evaluation.macro_pr_auc(Y, S, tag_names=names) == 1.0
  # The tagging task reports through the same path, with its tag names, for every branch.
  task = Tagging(names, branches=("a", "b"))
  with pytest.warns(evaluation.UndefinedMetricWarning) as record:
    out = task.evaluate(Y, {"a": S, "b": 1 - S})  # the prediction, their mean, is all ties
  messages = {str(w.message) for w in record}
  said = "left out 2 of 4 tags with a single class (metric undefined), tags: 'loud', 'slow'"
  for metric in ("ROC-AUC", "PR-AUC", "ROC-AUC (branch a)", "PR-AUC (branch b)"):
    assert f"macro {metric} {said}" in messages
  assert (out["roc_auc"], out["a/roc_auc"], out["b/roc_auc"]) == (0.5, 1.0, 0.0)
  assert out["tags_without_both_classes"] == 2
  assert np.isnan(out["a/per_tag_roc_auc"]["loud"]) and out["a/per_tag_roc_auc"]["quiet"] == 1.0


def test_accuracy_matches_sklearn():
  rng = np.random.default_rng(0)
  y = rng.integers(0, 5, 200)
  logits = rng.standard_normal((200, 5))
  ref = skm.accuracy_score(y, logits.argmax(-1))
  assert abs(evaluation.accuracy(y, logits) - ref) < TOL
  assert abs(evaluation.accuracy(y, logits.argmax(-1)) - ref) < TOL


@pytest.mark.parametrize("n_classes", [2, 5, 10])
def test_balanced_accuracy_matches_sklearn(n_classes):
  rng = np.random.default_rng(n_classes)
  y = rng.integers(0, n_classes, 150)
  logits = rng.standard_normal((150, n_classes)) + 2.0 * np.eye(n_classes)[y] * (rng.random(150) < 0.4)[:, None]
  ref = skm.balanced_accuracy_score(y, logits.argmax(-1))
  assert abs(evaluation.balanced_accuracy(y, logits) - ref) < TOL


def test_a_diverged_models_scores_give_nan_metrics_not_a_crash():
  """The metric functions refuse NaN scores, but a training run's evaluation reports NaN
  (null in results.json) with a warning, so a diverged run still ends and says so."""
  task = Tagging(("a", "b"))
  Y = np.array([[0, 1], [1, 0], [1, 1], [0, 0]])
  S = np.array([[0.1, np.nan], [0.9, 0.2], [0.8, 0.7], [0.2, 0.1]])
  with pytest.warns(RuntimeWarning, match="1 scores of the prediction are NaN"):
    out = task.evaluate(Y, {"tagging": S})
  assert np.isnan(out["roc_auc"]) and np.isnan(out["pr_auc"])
  assert all(np.isnan(v) for v in out["per_tag_roc_auc"].values())
  with pytest.raises(ValueError, match="NaN or infinite"):
    evaluation.roc_auc(Y[:, 1], S[:, 1])
