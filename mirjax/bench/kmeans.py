"""k-means speed: `python -m mirjax.bench.kmeans [--quick]`.

One Lloyd iteration (assignment of every point to its nearest centroid, then the centroid
update) of spherical k-means on clustered random unit vectors (1,000,000 x 64 float32,
k = 500 by default, a fixed seed), mirjax against scikit-learn on the same data and the
same initial centroids (k distinct points of the data, so unit vectors). Printed, each as
points/s (points of the data set processed per second):

  mirjax        mirjax's jitted `lloyd_step` (the one `kmeans.fit` runs each iteration) on
                the data already on the devices, split over the `data` axis of a mesh of
                every device; compiled before timing, the time from the call until its
                results are ready.
  scikit-learn  one iteration of the Lloyd kernel `KMeans(algorithm="lloyd")` runs in its
                loop (`sklearn.cluster._k_means_lloyd.lloyd_iter_chunked_dense`, a private
                function, called as KMeans calls it: its OpenMP threads, BLAS limited to 1
                thread): assignment and update, and nothing else.
  KMeans.fit    `KMeans(n_clusters=k, init=<the same centroids>, n_init=1, max_iter=1,
                algorithm="lloyd").fit(x)`: the public call, whose time also holds its
                per-fit setup (input checks, a copy of the data, centring it, the squared
                norms) and, after the one iteration, a second assignment pass that gives
                labels consistent with the final centroids, and the inertia.
  minibatch     `MiniBatchKMeans(n_clusters=k, init=<the same>, n_init=1, batch_size=4096,
                max_iter=1, compute_labels=False, tol=0, max_no_improvement=None)`: one epoch
                (n // 4096 batches of 4096 points drawn with replacement, so
                4096 * (n // 4096) points), with its setup, no early stop and no final
                labelling pass; the rate counts the points of those batches.

The ratios are mirjax's rate over each of the others. The objective line is the mean cosine
of the points to their nearest centroid after the iteration, with mirjax's centroids and
with scikit-learn KMeans's (normalised, since its centroids are means, not unit vectors);
both start from the same unit centroids, so the first assignment is the same (Euclidean
nearest = largest dot product for unit centroids) and the new centroids point the same
way up to rounding: the difference should be near float32 rounding. The last line is this
process's peak resident memory after the mirjax run (the data, JAX and XLA's buffers) and
XLA's temporary buffers of the compiled step on each device (its share of the n x k
similarities among them).

Needs `pip install scikit-learn` (a test and benchmark extra, not a runtime dependency of
mirjax); scikit-learn uses its default threads (one per core this process may run on).
"""
import warnings

from mirjax.bench import one_host_device_per_core

one_host_device_per_core()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from mirjax import sharding  # noqa: E402
from mirjax.bench import common  # noqa: E402
from mirjax.unsupervised import kmeans  # noqa: E402


def define_flags():
  """The command-line flags, defined when this file runs as a script (so the benches import side by side)."""
  flags.DEFINE_integer("points", 1_000_000, "Points (windows) in the data set.")
  flags.DEFINE_integer("dim", 64, "Dimension of each point.")
  flags.DEFINE_integer("k", 500, "Centroids.")
  flags.DEFINE_integer("batch_size", 4096, "MiniBatchKMeans's batch size.")
  flags.DEFINE_integer("repeats", 5, "Timed repetitions; the median is reported.")
  flags.DEFINE_bool("quick", False, "Tiny sizes: checks that everything runs, in seconds.")


FLAGS = flags.FLAGS


def clustered_unit_vectors(n: int, d: int, clusters: int, seed: int = 0) -> np.ndarray:
  """n unit rows (float32) scattered around `clusters` random unit directions (noise of
  norm about 0.5), generated in float32 chunks so that no float64 copy of the data exists."""
  rng = np.random.default_rng(seed)
  centres = rng.standard_normal((clusters, d), dtype=np.float32)
  centres /= np.linalg.norm(centres, axis=1, keepdims=True)
  x = np.empty((n, d), np.float32)
  for start in range(0, n, 1 << 17):
    rows = x[start:start + (1 << 17)]
    rows[:] = centres[rng.integers(clusters, size=rows.shape[0])]
    rows += rng.standard_normal(rows.shape, dtype=np.float32) * np.float32(0.5 / np.sqrt(d))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
  return x


def main(argv):
  del argv
  n, d, k, batch_size, repeats = FLAGS.points, FLAGS.dim, FLAGS.k, FLAGS.batch_size, FLAGS.repeats
  if FLAGS.quick:
    n, d, k, batch_size, repeats = 4096, 16, 16, 256, 1
  print(common.header("kmeans"))
  # scikit-learn is a benchmark extra: imported here, never by mirjax itself.
  # pylint: disable=import-outside-toplevel,protected-access
  from sklearn.cluster import KMeans, MiniBatchKMeans
  from sklearn.exceptions import ConvergenceWarning
  from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
  from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
  from threadpoolctl import threadpool_limits

  x = clustered_unit_vectors(n, d, k)
  rng = np.random.default_rng(1)
  init = x[rng.choice(n, k, replace=False)].copy()  # unit rows: no cluster starts empty

  # mirjax: the data placed as kmeans.fit places it, its compiled step timed alone.
  mesh = sharding.make_mesh()
  xs, weights, block = kmeans.place(x, mesh)
  _, _, step, _ = kmeans.programs(mesh, k, "given", block)
  c0 = jax.device_put(init, sharding.replicated(mesh))
  compiled = step.lower(xs, c0, weights).compile()
  memory = compiled.memory_analysis()
  temp_mib = float("nan") if memory is None else memory.temp_size_in_bytes / 2 ** 20
  t_mirjax = common.median_seconds(lambda: jax.block_until_ready(compiled(xs, c0, weights)), repeats)
  ours, _, _ = compiled(xs, c0, weights)
  rss_mib = common.peak_rss_mb()

  # scikit-learn's Lloyd kernel, called as KMeans's loop calls it (BLAS limited to one
  # thread, since the kernel's own OpenMP threads split the points).
  threads = _openmp_effective_n_threads()
  ones = np.ones(n, np.float32)
  centers_new, in_clusters = np.empty_like(init), np.zeros(k, np.float32)
  labels, shift = np.empty(n, np.int32), np.zeros(k, np.float32)

  def sklearn_iteration():
    with threadpool_limits(limits=1, user_api="blas"):
      lloyd_iter_chunked_dense(x, ones, init, centers_new, in_clusters, labels, shift, threads)

  t_kernel = common.median_seconds(sklearn_iteration, repeats)
  km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=1, algorithm="lloyd")
  with warnings.catch_warnings():
    # After one iteration from a fixed start a centroid can own no point of the final
    # labelling pass; KMeans warns of "duplicate points", which this data does not have.
    warnings.simplefilter("ignore", ConvergenceWarning)
    t_fit = common.median_seconds(lambda: km.fit(x), repeats)
  theirs = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)

  mb = MiniBatchKMeans(n_clusters=k, init=init, n_init=1, batch_size=batch_size, max_iter=1,
                       compute_labels=False, tol=0.0, max_no_improvement=None, random_state=0)
  t_mb = common.median_seconds(lambda: mb.fit(x), repeats)
  mb_points = batch_size * (n // batch_size)

  # Both objectives by the same sharded program: the step returns the mean best cosine
  # of the centroids it is given, before updating them.
  obj_ours = float(compiled(xs, ours, weights)[1])
  obj_theirs = float(compiled(xs, jax.device_put(theirs.astype(np.float32), sharding.replicated(mesh)),
                              weights)[1])

  rate, rate_kernel, rate_fit, rate_mb = n / t_mirjax, n / t_kernel, n / t_fit, mb_points / t_mb
  print(f"spherical k-means, one Lloyd iteration: {n} x {d} float32, k = {k}")
  print(f"  mirjax        {rate:11.0f} points/s ({jax.device_count()} devices)")
  print(f"  scikit-learn  {rate_kernel:11.0f} points/s (KMeans, lloyd, {threads} threads: one "
        f"iteration of its Lloyd kernel)")
  print(f"  KMeans.fit    {rate_fit:11.0f} points/s (max_iter=1: with its setup and a final "
        f"labelling pass)")
  print(f"  minibatch     {rate_mb:11.0f} points/s (MiniBatchKMeans, one epoch of batches of "
        f"{batch_size})")
  print(f"  ratio         {rate / rate_kernel:11.2f}x KMeans   {rate / rate_mb:.2f}x MiniBatchKMeans   "
        f"{rate / rate_fit:.2f}x KMeans.fit")
  print(f"  objective     {obj_ours:.6f} mirjax   {obj_theirs:.6f} KMeans (normalised)   "
        f"difference {abs(obj_ours - obj_theirs):.1e}")
  print(f"  peak host memory after the mirjax run: {rss_mib:.0f} MiB (XLA's temporary buffers "
        f"of the step: {temp_mib:.0f} MiB per device)")


if __name__ == "__main__":
  define_flags()
  app.run(main)
