"""Spherical k-means in JAX, sharded over the data axis of a mesh.

Points and centroids are unit vectors; a point belongs to the centroid of largest dot
product, and a centroid is the normalised sum of its members (Dhillon & Modha's spherical
k-means, the dictionary learner of Coates & Ng and of Dieleman & Schrauwen, ISMIR 2013).
The objective is the mean cosine of each point to its nearest centroid, which every Lloyd
iteration does not decrease.

Sharding: with a mesh, the points are split over its `data` axis and the centroids
replicated; each device assigns its own points and the per-centroid sums are reduced
across devices by the compiled program (an all-reduce of k x d numbers per iteration).
Rows added to fill the mesh carry weight 0 and count nowhere. `minibatch_fit` learns
from batches for data that do not fit in memory.
"""
import functools
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

DATA = "data"  # the mesh axis the points are split over (mirjax/sharding.py)


class KMeansResult(NamedTuple):
  centroids: np.ndarray  # (k, d) unit rows
  objective: np.ndarray  # (iterations + 1,) mean cosine to the nearest centroid, before each update and at the end
  counts: np.ndarray  # (k,) points per centroid at the end
  reseeded: int  # empty clusters re-seeded over all iterations


def normalize(x, eps: float = 1e-8):
  """Rows of x scaled to unit l2 norm (rows of norm below eps stay near 0)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def assign(x, centroids):
  """(index (n,), cosine (n,)) of each unit row's nearest centroid: the largest dot product."""
  sims = x @ centroids.T
  return jnp.argmax(sims, axis=1), jnp.max(sims, axis=1)


def objective(x, centroids, weights=None):
  """Mean cosine of the (normalised) rows of x to their nearest unit centroid."""
  x = normalize(jnp.asarray(x, jnp.float32))
  _, best = assign(x, jnp.asarray(centroids, jnp.float32))
  w = jnp.ones(x.shape[0], x.dtype) if weights is None else weights
  return jnp.sum(w * best) / jnp.sum(w)


def statistics(x, centroids, weights):
  """(sums (k, d), counts (k,), sum of best cosines, best cosine (n,)) of unit rows x with
  `weights` (0 for padding) under the nearest-centroid assignment."""
  idx, best = assign(x, centroids)
  onehot = jax.nn.one_hot(idx, centroids.shape[0], dtype=x.dtype) * weights[:, None]
  return onehot.T @ x, onehot.sum(axis=0), jnp.sum(best * weights), best


def blocked_statistics(x, centroids, weights, block: int):
  """`statistics` computed `block` rows at a time (a scan; n a multiple of block): each
  block's similarities stay in cache and are never all held at once, and the members are
  added to their centroid's sum by a scatter, not by a second (n x k) product."""
  k, d = centroids.shape
  iota = jnp.arange(k)[:, None]

  def add_block(carry, rows):
    sums, counts, total = carry
    xb, wb = rows
    # (k, block): reducing over centroids is then elementwise across the block's points,
    # which vectorises well on a CPU (a third faster than (block, k) on 2 cores)
    sims = centroids @ xb.T
    best = jnp.max(sims, axis=0)
    idx = jnp.min(jnp.where(sims >= best[None], iota, k), axis=0)  # the first largest (argmax is slower on CPU)
    return (sums.at[idx].add(xb * wb[:, None]), counts.at[idx].add(wb), total + jnp.sum(best * wb)), best

  start = (jnp.zeros((k, d), x.dtype), jnp.zeros(k, x.dtype), jnp.zeros((), x.dtype))
  (sums, counts, total), best = jax.lax.scan(add_block, start, (x.reshape(-1, block, d), weights.reshape(-1, block)))
  return sums, counts, total, best.reshape(-1)


def sharded_statistics(mesh, block: int):
  """`blocked_statistics` over the rows each device holds (x and weights split over the
  mesh's data axis), the sums, counts and total then summed across devices; the best
  cosines stay split like the rows."""
  def per_device(x, centroids, weights):
    sums, counts, total, best = blocked_statistics(x, centroids, weights, block)
    return jax.lax.psum(sums, DATA), jax.lax.psum(counts, DATA), jax.lax.psum(total, DATA), best
  # check_vma off: the scan's zero start is per-device data, which the checker cannot see
  return jax.shard_map(per_device, mesh=mesh, in_specs=(P(DATA), P(), P(DATA)),
                       out_specs=(P(), P(), P(), P(DATA)), check_vma=False)


def lloyd_step(x, centroids, weights, stats=statistics):
  """One spherical Lloyd iteration: (new centroids, objective before it, empty clusters).

  c_j <- sum_{i in j} x_i / ||sum_{i in j} x_i||. A cluster left without points takes the
  point of lowest cosine to its centroid (the worst fitted first; padding never), so k
  centroids stay distinct and the objective does not drop. `stats` computes the sums
  (`statistics`, `blocked_statistics` or `sharded_statistics`).
  """
  sums, counts, total, best = stats(x, centroids, weights)
  new = normalize(sums)
  empty = counts == 0
  k = centroids.shape[0]
  worst = jax.lax.top_k(jnp.where(weights > 0, -best, -jnp.inf), min(k, x.shape[0]))[1]
  rank = jnp.clip(jnp.cumsum(empty) - 1, 0, worst.shape[0] - 1)
  new = jnp.where(empty[:, None], x[worst[rank]], new)
  return new, total / jnp.sum(weights), jnp.sum(empty)


def kmeans_plus_plus(key, x, weights, k: int, candidates: int | None = None):
  """k centroids chosen as greedy k-means++ (Arthur & Vassilvitskii 2007) does for the
  spherical distance: the first uniformly, then at each step `candidates` points (default
  2 + log k) drawn with probability proportional to 1 - cos(x, nearest centroid so far)
  (||x - c||^2 / 2 for unit vectors), keeping the one that most lowers the sum of those."""
  n_cand = 2 + int(np.log(k)) if candidates is None else int(candidates)
  keys = jax.random.split(key, k)
  first = jax.random.choice(keys[0], x.shape[0], p=weights / jnp.sum(weights))
  centroids = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
  best = x @ x[first]

  def add(j, carry):
    centroids, best = carry
    p = jnp.maximum(1.0 - best, 0.0) * weights
    p = jnp.where(jnp.sum(p) > 0, p, weights)  # every point on a centroid already: uniform
    picks = jax.random.choice(keys[j], x.shape[0], (n_cand,), p=p / jnp.sum(p))
    trial = jnp.maximum(best[None], x[picks] @ x.T)  # (candidates, n) best cosines with each
    i = jnp.argmax(trial @ weights)  # the largest total cosine: the lowest potential
    return centroids.at[j].set(x[picks[i]]), trial[i]

  centroids, _ = jax.lax.fori_loop(1, k, add, (centroids, best))
  return centroids


def random_sample(key, x, weights, k: int):
  """k distinct points of weight > 0, uniformly at random, as centroids."""
  return x[jax.random.choice(key, x.shape[0], (k,), replace=False, p=weights / jnp.sum(weights))]


INITS = {"kmeans++": kmeans_plus_plus, "sample": random_sample}


BLOCK = 1024  # rows per block of the similarity computation: about 2 MB of similarities at k = 500


def place(x, mesh):
  """(x, weights, block): x padded with rows of weight 0 to whole blocks on every device,
  as arrays split over the mesh's `data` axis (or plain device arrays without a mesh)."""
  x = np.asarray(x, np.float32)
  n = x.shape[0]
  devices = 1 if mesh is None else mesh.devices.size
  block = min(BLOCK, -(-n // devices))
  pad = -n % (devices * block)
  weights = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
  x = np.concatenate([x, np.zeros((pad, x.shape[1]), np.float32)])
  if mesh is None:
    return jnp.asarray(x), jnp.asarray(weights), block
  rows = NamedSharding(mesh, P(DATA))
  return jax.device_put(x, rows), jax.device_put(weights, rows), block


@functools.lru_cache(maxsize=None)
def programs(mesh, k: int, init: str, block: int):
  """The jitted normalisation, initialisation (None for given centroids), Lloyd step and
  statistics for a mesh (None: one device) and rows placed by `place` in blocks of `block`."""
  if mesh is None:
    stats = functools.partial(blocked_statistics, block=block)
    return (jax.jit(normalize), jax.jit(functools.partial(INITS[init], k=k)) if init in INITS else None,
            jax.jit(functools.partial(lloyd_step, stats=stats)), jax.jit(stats))
  rows, rep = NamedSharding(mesh, P(DATA)), NamedSharding(mesh, P())
  stats = sharded_statistics(mesh, block)
  norm = jax.jit(normalize, in_shardings=(rows,), out_shardings=rows)
  start = (jax.jit(functools.partial(INITS[init], k=k), in_shardings=(rep, rows, rows), out_shardings=rep)
           if init in INITS else None)
  step = jax.jit(functools.partial(lloyd_step, stats=stats), in_shardings=(rows, rep, rows),
                 out_shardings=(rep, rep, rep))
  return norm, start, step, jax.jit(stats)


def fit(x, k: int, *, key=None, iterations: int = 20, init="kmeans++", tol: float = 0.0, mesh=None,
        progress=None) -> KMeansResult:
  """Spherical k-means of the rows of x (n, d) (normalised here), `iterations` Lloyd steps
  at most, stopping early once an iteration raises the objective by less than `tol`.

  Parameters
  ----------
  x : array (n, d), n >= k; rows of zero norm are best left out
  k : number of centroids
  key : jax PRNG key of the initialisation (default key 0)
  init : "kmeans++", "sample" (k random points) or an array (k, d) of initial centroids
  mesh : a jax Mesh with a "data" axis (mirjax.sharding.make_mesh): x is split over it
  progress : optional callable(iteration, objective) called after every iteration

  Returns
  -------
  KMeansResult (centroids (k, d) unit rows as NumPy, the objective history, the counts,
  the number of empty clusters re-seeded)
  """
  n = np.shape(x)[0]
  if not 0 < k <= n:
    raise ValueError(f"spherical k-means of {n} points into k={k} clusters: k must be in [1, {n}]")
  given = not isinstance(init, str)
  if not given and init not in INITS:
    raise ValueError(f"unknown init {init!r}; choose one of {sorted(INITS)} or pass (k, d) centroids")
  xs, weights, block = place(x, mesh)
  norm, start, step, stats = programs(mesh, int(k), "given" if given else init, block)
  xs = norm(xs)
  if given:
    centroids = normalize(jnp.asarray(init, jnp.float32))
    if centroids.shape != (k, xs.shape[1]):
      raise ValueError(f"init centroids have shape {centroids.shape}, want {(k, xs.shape[1])}")
  else:
    centroids = start(jax.random.key(0) if key is None else key, xs, weights)
  history, reseeded = [], 0
  for i in range(iterations):
    centroids, value, empty = step(xs, centroids, weights)
    history.append(float(value))
    reseeded += int(empty)
    if progress is not None:
      progress(i, history[-1])
    if i and tol > 0 and history[-1] - history[-2] < tol:
      break
  _, counts, total, _ = stats(xs, centroids, weights)
  history.append(float(total) / n)
  return KMeansResult(np.asarray(centroids), np.asarray(history), np.asarray(counts).astype(np.int64), reseeded)


@jax.jit
def minibatch_step(centroids, totals, x):
  """One mini-batch update (Sculley 2010, for unit vectors): each centroid moves to the
  running mean of every point it was given so far, c_j <- c_j + (s_j - n_j c_j) / N_j, then
  back onto the sphere. `totals` (k,) are the N_j before this batch; returns (centroids,
  totals, the batch's objective)."""
  x = normalize(x)
  sums, counts, total, _ = statistics(x, centroids, jnp.ones(x.shape[0], x.dtype))
  totals = totals + counts
  moved = centroids + (sums - counts[:, None] * centroids) / jnp.maximum(totals, 1.0)[:, None]
  return normalize(jnp.where(counts[:, None] > 0, moved, centroids)), totals, total / x.shape[0]


def minibatch_fit(batches, k: int, *, key=None, init="kmeans++") -> KMeansResult:
  """Spherical k-means from an iterable of (b, d) batches, one pass (repeat the iterable for
  more epochs); the first batch (b >= k) gives the initial centroids. The objective history
  is each batch's, measured before its update."""
  it = iter(batches)
  first = np.asarray(next(it), np.float32)
  xs = normalize(jnp.asarray(first))
  if isinstance(init, str):
    centroids = INITS[init](jax.random.key(0) if key is None else key, xs, jnp.ones(xs.shape[0]), k)
  else:
    centroids = normalize(jnp.asarray(init, jnp.float32))
  totals = jnp.zeros(k, jnp.float32)
  history = []
  for batch in itertools.chain([first], it):  # lazily: the batches need not fit in memory
    centroids, totals, value = minibatch_step(centroids, totals, jnp.asarray(batch, jnp.float32))
    history.append(float(value))
  return KMeansResult(np.asarray(centroids), np.asarray(history), np.asarray(totals).astype(np.int64), 0)
