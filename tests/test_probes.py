"""Probes on fixed features (mirjax.evaluation.probes) against scikit-learn's logistic
regression on the same splits, and an MLP where no linear probe can work."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from mirjax.evaluation import probes


def _split(x, y):
  n = len(x)
  a, b = int(0.6 * n), int(0.8 * n)
  return (x[:a], y[:a]), (x[a:b], y[a:b]), (x[b:], y[b:])


def test_linear_probe_matches_sklearn_logistic_regression():
  rng = np.random.default_rng(0)
  centres = rng.standard_normal((4, 10)) * 1.2
  y = rng.integers(0, 4, 600)
  x = centres[y] + rng.standard_normal((600, 10))
  train, valid, test = _split(x, y)
  got = probes.fit_probe(train, valid, test, task="classification", n_out=4)
  mean, std = train[0].mean(0), train[0].std(0)
  sk = LogisticRegression(C=1.0, max_iter=2000).fit((train[0] - mean) / std, train[1])
  want = sk.score((test[0] - mean) / std, test[1])
  assert got.test == pytest.approx(want, abs=0.03)
  assert got.l2 in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1) and got.valid == max(got.valid_by_l2)


def test_tagging_probe_matches_sklearn_per_tag():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((800, 8))
  w = rng.standard_normal((8, 3))
  y = ((x @ w + 0.7 * rng.standard_normal((800, 3))) > 0).astype(np.float32)
  train, valid, test = _split(x, y)
  got = probes.fit_probe(train, valid, test, task="tagging", n_out=3)
  mean, std = train[0].mean(0), train[0].std(0)
  want = np.mean([roc_auc_score(test[1][:, k], LogisticRegression(max_iter=2000).fit(
      (train[0] - mean) / std, train[1][:, k]).decision_function((test[0] - mean) / std)) for k in range(3)])
  assert got.test == pytest.approx(want, abs=0.01)


def test_mlp_probe_learns_what_a_linear_one_cannot():
  rng = np.random.default_rng(2)
  x = rng.uniform(-1, 1, (1200, 2))
  y = ((x[:, 0] * x[:, 1]) > 0).astype(np.int32)  # XOR of the signs
  train, valid, test = _split(x, y)
  linear = probes.fit_probe(train, valid, test, task="classification", n_out=2)
  mlp = probes.fit_probe(train, valid, test, task="classification", n_out=2, kind="mlp")
  assert linear.test < 0.65 and mlp.test > 0.9
  with pytest.raises(ValueError, match="probe kind"):
    probes.fit_probe(train, valid, test, task="classification", n_out=2, kind="svm")
