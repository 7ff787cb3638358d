"""PCA whitening: rotate centred windows onto their principal axes and scale each axis to unit
variance, with a regulariser eps that keeps low-variance axes from being blown up,
z = diag(1 / sqrt(lambda + eps)) U^T (x - mu) (Coates & Ng's pre-processing, used by
Dieleman & Schrauwen, ISMIR 2013). With eps = 0 it is scikit-learn's PCA(whiten=True).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from mirjax.unsupervised.kmeans import DATA


class Whitening(NamedTuple):
  mean: np.ndarray  # (d,)
  components: np.ndarray  # (m, d) principal axes, largest variance first
  variances: np.ndarray  # (m,) variance along each axis (the covariance's eigenvalues, n - 1 normalised)
  eps: float  # the regulariser added to every variance

  def scale(self):
    return 1.0 / np.sqrt(self.variances + self.eps)


def _moments(x, weights):
  """(mean (d,), covariance (d, d)) of the rows of weight 1; the sums over rows reduce across
  the devices the rows are split over."""
  n = jnp.sum(weights)
  mean = weights @ x / n
  centred = (x - mean) * weights[:, None]
  return mean, centred.T @ centred / (n - 1.0)


def fit_whitening(x, eps: float = 0.01, n_components: int | None = None, mesh=None) -> Whitening:
  """PCA whitening fitted on the rows of x (n, d), keeping the n_components axes of largest
  variance (None: all d). With a mesh the rows are split over its data axis. Each axis's
  sign makes its largest-magnitude entry positive, so a fit is reproducible."""
  x = np.asarray(x, np.float32)
  n, d = x.shape
  if n < 2:
    raise ValueError(f"PCA whitening needs at least 2 rows, got {n}")
  m = d if n_components in (None, 0) else int(n_components)
  if not 0 < m <= d:
    raise ValueError(f"n_components={n_components} must be in [1, {d}]")
  pad = 0 if mesh is None else -n % mesh.devices.size
  weights = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
  x = np.concatenate([x, np.zeros((pad, d), np.float32)])
  if mesh is None:
    mean, cov = jax.jit(_moments)(x, weights)
  else:
    rows = NamedSharding(mesh, P(DATA))
    mean, cov = jax.jit(_moments, in_shardings=(rows, rows), out_shardings=NamedSharding(mesh, P()))(
        jax.device_put(x, rows), jax.device_put(weights, rows))
  # the d x d eigenproblem in float64 on the host: cheap, and exact where eigenvalues are close
  values, vectors = np.linalg.eigh(np.asarray(cov, np.float64))
  order = np.argsort(values)[::-1][:m]
  values, vectors = np.maximum(values[order], 0.0), vectors[:, order].T
  signs = np.sign(vectors[np.arange(m), np.argmax(np.abs(vectors), axis=1)])
  return Whitening(np.asarray(mean, np.float32), (vectors * signs[:, None]).astype(np.float32),
                   values.astype(np.float32), float(eps))


def whiten(w: Whitening, x):
  """(..., d) -> (..., m): centred, projected onto the principal axes, scaled to unit variance."""
  return (x - w.mean) @ w.components.T * w.scale().astype(np.float32)
