"""Spherical k-means, PCA whitening and the window encoding (mirjax/unsupervised/) against a
NumPy reference, scikit-learn's KMeans and PCA, and their sharded forms on the 8-device mesh."""
import jax
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from mirjax import sharding
from mirjax.unsupervised import encoding, kmeans, whitening


def _clusters(n=2000, d=16, centres=12, noise=0.6, seed=0):
  rng = np.random.default_rng(seed)
  c = rng.standard_normal((centres, d))
  x = c[rng.integers(0, centres, n)] + noise * rng.standard_normal((n, d))
  return x.astype(np.float32)


def _unit(x):
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def _numpy_spherical_kmeans(x, centroids, iterations):
  """The definition: assign by largest dot product, centroid = normalised member sum; an
  empty cluster takes the worst-fitted point (lowest best cosine) first."""
  x, c = _unit(x.astype(np.float64)), _unit(centroids.astype(np.float64))
  history = []
  for _ in range(iterations):
    sims = x @ c.T
    idx, best = sims.argmax(1), sims.max(1)
    history.append(best.mean())
    sums = np.zeros_like(c)
    np.add.at(sums, idx, x)
    counts = np.bincount(idx, minlength=len(c))
    new = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-8)
    worst = np.argsort(best, kind="stable")
    for rank, j in enumerate(np.flatnonzero(counts == 0)):
      new[j] = x[worst[rank]]
    c = new
  history.append((x @ c.T).max(1).mean())
  return c, np.array(history)


def test_spherical_kmeans_equals_the_numpy_definition_from_the_same_start():
  x = _clusters()
  init = x[np.random.default_rng(1).choice(len(x), 12, replace=False)]
  got = kmeans.fit(x, 12, init=init, iterations=15)
  want_c, want_h = _numpy_spherical_kmeans(x, init, 15)
  np.testing.assert_allclose(got.objective, want_h, atol=2e-6)
  np.testing.assert_allclose(got.centroids, want_c, atol=2e-4)
  np.testing.assert_allclose(np.linalg.norm(got.centroids, axis=1), 1.0, atol=1e-5)
  assert np.all(np.diff(got.objective) >= -1e-6)  # Lloyd never lowers the objective
  assert got.counts.sum() == len(x)


def test_an_empty_cluster_is_reseeded_with_the_worst_fitted_point():
  x = _clusters(n=500, centres=5)
  init = x[:6].copy()
  init[5] = init[4]  # a duplicate centroid: argmax gives it no point
  got = kmeans.fit(x, 6, init=init, iterations=8)
  want_c, want_h = _numpy_spherical_kmeans(x, init, 8)
  assert got.reseeded >= 1 and np.all(got.counts > 0)
  np.testing.assert_allclose(got.objective, want_h, atol=2e-6)
  np.testing.assert_allclose(got.centroids, want_c, atol=2e-4)


def test_reaches_at_least_scikit_learns_kmeans_on_normalised_data():
  # both from 5 random starts (their k-means++ and ours), scored by the spherical objective
  x = _unit(_clusters(n=3000, d=24, centres=20, noise=0.9, seed=3))
  k = 16
  ours = [kmeans.fit(x, k, key=jax.random.key(s), iterations=100).objective[-1] for s in range(5)]
  theirs = []
  for s in range(5):
    km = KMeans(k, n_init=1, random_state=s).fit(x)
    theirs.append((x @ _unit(km.cluster_centers_).T).max(1).mean())  # its centroids' mean cosine
  assert np.mean(ours) >= np.mean(theirs) - 1e-3 and max(ours) >= max(theirs) - 1e-3, (ours, theirs)
  # a random-sample start gets there too, with a few more iterations
  sample = kmeans.fit(x, k, init="sample", key=jax.random.key(0), iterations=100).objective[-1]
  assert sample >= np.mean(theirs) - 0.01


def test_sharded_over_the_mesh_equals_one_device():
  assert jax.device_count() == 8
  x = _clusters(n=1003)  # not a multiple of 8: padding rows must count nowhere
  mesh = sharding.make_mesh(-1)
  one = kmeans.fit(x, 12, key=jax.random.key(4), iterations=10)
  eight = kmeans.fit(x, 12, key=jax.random.key(4), iterations=10, mesh=mesh)
  np.testing.assert_allclose(eight.objective, one.objective, atol=1e-5)
  np.testing.assert_allclose(eight.centroids, one.centroids, atol=1e-4)
  np.testing.assert_array_equal(eight.counts, one.counts)


def test_minibatch_updates_approach_the_full_fit():
  x = _clusters(n=4000, centres=10, noise=0.4)
  full = kmeans.fit(x, 10, key=jax.random.key(0), iterations=30).objective[-1]
  batches = [x[i:i + 250] for i in range(0, len(x), 250)] * 3  # three epochs
  mini = kmeans.minibatch_fit(batches, 10, key=jax.random.key(0))
  assert float(kmeans.objective(x, mini.centroids)) > full - 0.03
  assert mini.counts.sum() == 3 * len(x)


def test_bad_k_or_init_is_refused():
  x = _clusters(n=20)
  with pytest.raises(ValueError, match="k must be"):
    kmeans.fit(x, 21)
  with pytest.raises(ValueError, match="unknown init"):
    kmeans.fit(x, 3, init="forgy")


def _aligned(a, b):  # each row of a with the sign that best matches the same row of b
  return a * np.sign(np.sum(a * b, axis=1, keepdims=True))


def test_pca_whitening_equals_scikit_learn_pca_whiten_true():
  rng = np.random.default_rng(0)
  x = (rng.standard_normal((800, 10)) @ rng.standard_normal((10, 10)) + 3.0).astype(np.float32)
  ours = whitening.fit_whitening(x, eps=0.0, n_components=6)
  pca = PCA(n_components=6, whiten=True, svd_solver="full").fit(x)
  np.testing.assert_allclose(ours.mean, pca.mean_, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ours.variances, pca.explained_variance_, rtol=1e-4)
  np.testing.assert_allclose(_aligned(ours.components, pca.components_), pca.components_, atol=1e-4)
  signs = np.sign(np.sum(ours.components * pca.components_, axis=1))
  np.testing.assert_allclose(np.asarray(whitening.whiten(ours, x)) * signs, pca.transform(x), atol=2e-3)
  # the regulariser: variance lambda / (lambda + eps) along each axis
  reg = whitening.fit_whitening(x, eps=1.0)
  z = np.asarray(whitening.whiten(reg, x))
  np.testing.assert_allclose(z.var(0, ddof=1), reg.variances / (reg.variances + 1.0), rtol=1e-3)


def test_pca_whitening_sharded_equals_one_device():
  x = _clusters(n=1001, d=12)
  one = whitening.fit_whitening(x, eps=0.01)
  eight = whitening.fit_whitening(x, eps=0.01, mesh=sharding.make_mesh(-1))
  for a, b in zip(one[:3], eight[:3]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_windows_encoders_and_pooling():
  S = np.random.default_rng(0).standard_normal((2, 9, 3)).astype(np.float32)
  w = np.asarray(encoding.windows(S, 4))
  assert w.shape == (2, 6, 12)
  np.testing.assert_array_equal(w[1, 2], S[1, 2:6].reshape(-1))
  assert encoding.windows(S[:, :2], 4).shape == (2, 1, 12)  # shorter than a window: padded
  rng = np.random.default_rng(1)
  z, c = rng.standard_normal((5, 8)).astype(np.float32), _unit(rng.standard_normal((7, 8))).astype(np.float32)
  np.testing.assert_allclose(np.asarray(encoding.encode(z, c, "relu")), np.maximum(z @ c.T, 0), atol=1e-5)
  dist = np.linalg.norm(_unit(z)[:, None] - c[None], axis=-1)
  want = np.maximum(dist.mean(1, keepdims=True) - dist, 0)
  np.testing.assert_allclose(np.asarray(encoding.encode(z, c, "triangle")), want, atol=1e-5)
  pooled = np.asarray(encoding.pool(w))
  np.testing.assert_allclose(pooled, np.concatenate([w.mean(1), w.max(1)], -1), atol=1e-6)
  with pytest.raises(ValueError, match="triangle"):
    encoding.encode(z, c, "sparse")
