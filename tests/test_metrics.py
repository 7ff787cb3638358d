"""mirjax.evaluation against scikit-learn to 1e-10, on data with ties and one-class tags."""
import numpy as np
import pytest
from sklearn import metrics as skm

from mirjax import evaluation

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
def test_binary_metrics_match_sklearn(seed):
  rng = np.random.default_rng(seed)
  for _ in range(20):
    n = int(rng.integers(2, 60))
    y = rng.integers(0, 2, n)
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
  ref_ap = skm.average_precision_score(Y[:, keep], S[:, keep], average=None)
  np.testing.assert_allclose(auc[keep], ref_auc, rtol=0, atol=TOL)
  np.testing.assert_allclose(ap[keep], ref_ap, rtol=0, atol=TOL)
  macro_auc = skm.roc_auc_score(Y[:, keep], S[:, keep], average="macro")
  macro_ap = skm.average_precision_score(Y[:, keep], S[:, keep], average="macro")
  assert abs(evaluation.macro_roc_auc(Y, S) - macro_auc) < TOL
  assert abs(evaluation.macro_pr_auc(Y, S) - macro_ap) < TOL


def test_undefined_cases():
  with pytest.raises(ValueError):
    evaluation.roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
  assert np.isnan(evaluation.average_precision([0, 0], [0.3, 0.1]))
  assert evaluation.average_precision([1, 1], [0.3, 0.1]) == 1.0
  Y = np.zeros((4, 3))
  assert np.isnan(evaluation.macro_roc_auc(Y, np.ones((4, 3))))
  assert evaluation.single_class_tags(Y).all()


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
