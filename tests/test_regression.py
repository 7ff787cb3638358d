"""The regression task and regression probes against scikit-learn."""
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import linear_model, metrics as skm

from mirjax import tasks
from mirjax.data.info import Info
from mirjax.errors import ConfigError
from mirjax.evaluation import probes
from mirjax.tasks import regression


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_match_sklearn(seed):
  rng = np.random.default_rng(seed)
  y = rng.normal(size=(50, 4))
  p = y + rng.normal(scale=0.5, size=y.shape)
  assert abs(regression.mean_squared_error(y, p) - skm.mean_squared_error(y, p)) < 1e-12
  assert abs(regression.r2(y, p) - skm.r2_score(y, p)) < 1e-12
  y[:, 2] = 3.0  # a constant dimension: 1 when predicted exactly, else 0 (as scikit-learn)
  for q in (p, np.where(np.arange(4) == 2, 3.0, p)):
    assert abs(regression.r2(y, q) - skm.r2_score(y, q)) < 1e-12


def test_task_losses_mask_padding_and_build_from_the_dataset():
  task = tasks.build(type("C", (), {"name": "regression", "branches": ("regression",), "get": lambda self, key, default=None: default})(),
                     Info("f", 16000, target_dim=3))
  assert task.n_outputs == 3 and task.target == "factors"
  y = np.arange(6, dtype=np.float32).reshape(2, 3)
  out = {"regression": jnp.asarray(y + np.array([[1.0], [100.0]], np.float32))}
  loss = task.losses(out, {"factors": jnp.asarray(y), "mask": jnp.asarray([True, False])})["regression"]
  assert float(loss) == pytest.approx(1.0)  # the padded second example is left out
  res = task.evaluate(y, {"regression": y + 1.0})
  assert res["mse"] == pytest.approx(1.0) and res["r2"] == pytest.approx(skm.r2_score(y, y + 1.0))
  with pytest.raises(ConfigError, match="real-valued targets"):
    tasks.build(type("C", (), {"name": "regression", "branches": ("regression",), "get": lambda self, key, default=None: default})(),
                Info("f", 16000))


def test_linear_regression_probe_reaches_ridge():
  rng = np.random.default_rng(3)
  X = rng.normal(size=(300, 6))
  W = rng.normal(size=(6, 2))
  Y = X @ W + 0.1 * rng.normal(size=(300, 2))
  predict, l2, by_l2 = probes.fit_selected((X[:200], Y[:200]), (X[200:250], Y[200:250]), task="regression",
                                           n_out=2, kind="linear", l2_grid=(1e-6, 1e-2), steps=1500, lr=0.05)
  ridge = linear_model.Ridge(alpha=1e-6 * 200).fit(X[:200], Y[:200])
  ours, theirs = skm.r2_score(Y[250:], predict(X[250:])), skm.r2_score(Y[250:], ridge.predict(X[250:]))
  assert len(by_l2) == 2 and l2 in (1e-6, 1e-2)
  assert ours >= theirs - 2e-3, (ours, theirs)
