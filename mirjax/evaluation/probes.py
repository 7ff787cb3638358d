"""Probes: a linear classifier or a one-hidden-layer MLP fitted on fixed features, the
weight decay chosen on a validation split (the transfer job, mirjax/jobs/transfer.py).

A probe reads features standardised with the training split's mean and standard deviation
and is fitted full-batch with Adam for a fixed number of steps, once per weight decay of
`l2_grid` (all at once, vmapped); the one with the best validation metric is kept. Tasks:
"classification" (softmax cross-entropy; metric accuracy), "tagging" (sigmoid binary
cross-entropy per tag; metric macro ROC-AUC over the tags with both classes in the split) or
"regression" (mean squared error; metric R^2, mirjax/tasks/regression.py).
"""
import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mirjax.evaluation import metrics

KINDS = ("linear", "mlp")
TASKS = ("classification", "tagging", "regression")


class ProbeResult(NamedTuple):
  """A fitted probe: its validation and test metric, the weight decay chosen, and the
  validation metric of every weight decay tried."""
  valid: float
  test: float
  l2: float
  valid_by_l2: tuple


def _init(key, dim, n_out, kind, hidden):
  k1, k2 = jax.random.split(key)
  if kind == "linear":
    return {"w": jnp.zeros((dim, n_out)), "b": jnp.zeros((n_out,))}
  return {"w1": jax.random.normal(k1, (dim, hidden)) * jnp.sqrt(2.0 / dim), "b1": jnp.zeros((hidden,)),
          "w": jax.random.normal(k2, (hidden, n_out)) * jnp.sqrt(1.0 / hidden), "b": jnp.zeros((n_out,))}


def _apply(params, x):
  if "w1" in params:
    x = jax.nn.relu(x @ params["w1"] + params["b1"])
  return x @ params["w"] + params["b"]


def _loss(params, x, y, l2, task):
  logits = _apply(params, x)
  if task == "classification":
    data = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
  elif task == "regression":
    data = jnp.mean((logits - y) ** 2)
  else:
    data = optax.sigmoid_binary_cross_entropy(logits, y).mean()
  decay = sum(jnp.sum(v ** 2) for k, v in params.items() if k.startswith("w"))
  return data + l2 * decay


@functools.partial(jax.jit, static_argnames=("n_out", "kind", "hidden", "task", "steps", "lr"))
def _fit(key, x, y, l2s, *, n_out, kind, hidden, task, steps, lr):
  """Parameters fitted for each weight decay of `l2s` (stacked on a leading axis)."""
  tx = optax.adam(lr)

  def one(l2):
    params = _init(key, x.shape[1], n_out, kind, hidden)

    def step(carry, _):
      p, s = carry
      g = jax.grad(_loss)(p, x, y, l2, task)
      u, s = tx.update(g, s, p)
      return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    return params

  return jax.vmap(one)(l2s)


def score(task: str, y, logits) -> float:
  """The probe's metric: accuracy (classification), macro ROC-AUC (tagging) or R^2
  (regression); higher is better."""
  if task == "classification":
    return metrics.accuracy(y, logits)
  if task == "regression":
    from mirjax.tasks.regression import r2  # pylint: disable=import-outside-toplevel
    return r2(y, logits)
  with warnings.catch_warnings():  # a tag with one class in the split is left out of the mean
    warnings.simplefilter("ignore", metrics.UndefinedMetricWarning)
    return metrics.macro_roc_auc(y, logits)


def fit_selected(train, valid, *, task: str, n_out: int, kind: str = "linear",
                 l2_grid=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1), steps: int = 500, lr: float = 1e-2,
                 hidden: int = 128, seed: int = 0):
  """A probe fitted on `train` = (features (n, d), targets) for every weight decay of
  `l2_grid`, the one of best `valid` metric kept: (predict(features) -> outputs, its weight
  decay, the validation metric of every weight decay). Targets: (n,) class indices, (n,
  n_out) 0/1 tags or (n, n_out) real values (regression)."""
  if kind not in KINDS:
    raise ValueError(f"probe kind must be one of {KINDS}, got {kind!r}")
  if task not in TASKS:
    raise ValueError(f"probe task must be one of {TASKS}, got {task!r}")
  mean = train[0].mean(axis=0)
  std = train[0].std(axis=0) + 1e-6
  prep = lambda x: jnp.asarray((np.asarray(x, np.float64) - mean) / std, jnp.float32)  # noqa: E731
  y_train = jnp.asarray(train[1], jnp.int32 if task == "classification" else jnp.float32)
  params = _fit(jax.random.key(seed), prep(train[0]), y_train, jnp.asarray(l2_grid, jnp.float32),
                n_out=n_out, kind=kind, hidden=hidden, task=task, steps=steps, lr=lr)
  valid_logits = np.asarray(jax.vmap(_apply, (0, None))(params, prep(valid[0])))
  by_l2 = [score(task, valid[1], v) for v in valid_logits]
  best = int(np.nanargmax(by_l2))
  chosen = jax.tree.map(lambda p: p[best], params)
  return (lambda x: np.asarray(_apply(chosen, prep(x)))), float(l2_grid[best]), tuple(float(v) for v in by_l2)


def fit_probe(train, valid, test, *, task: str, n_out: int, kind: str = "linear",
              l2_grid=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1), steps: int = 500, lr: float = 1e-2,
              hidden: int = 128, seed: int = 0) -> ProbeResult:
  """Fit a probe on `train` = (features (n, d), labels), choose its weight decay on `valid`
  and score it on `test` (`fit_selected`)."""
  predict, l2, by_l2 = fit_selected(train, valid, task=task, n_out=n_out, kind=kind, l2_grid=l2_grid,
                                    steps=steps, lr=lr, hidden=hidden, seed=seed)
  return ProbeResult(float(max(v for v in by_l2 if not np.isnan(v))), float(score(task, test[1], predict(test[0]))),
                     l2, by_l2)
