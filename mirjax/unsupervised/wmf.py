"""Weighted matrix factorisation (WMF) of implicit feedback by alternating least squares.

Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets" (ICDM 2008):
with play counts r_ui, preference p_ui = [r_ui > 0] and confidence c_ui (1 where r_ui = 0),

  L(X, Y) = sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + reg (sum_u |x_u|^2 + sum_i |y_i|^2)

is minimised by alternating exact solves for every user's row x_u (then every item's row):

  x_u = (Y^T Y + Y^T (C^u - I) Y + reg I)^{-1} Y^T C^u p(u)        (Hu et al., eq. 4)

where C^u - I is non-zero only on the items u played, so each row costs a pass over its
own interactions plus a k x k solve ("cholesky"). A row in a bucket of width n <= k/2 (at
most n interactions) is solved exactly through the Woodbury identity instead: with G = Y^T Y + reg I = L L^T and V the
row's item factors scaled by sqrt(c - 1), its n x n capacitance system I + Z Z^T
(Z = V L^{-T}, eigenvalues >= 1) replaces the k x k one, and the k x k work becomes two
products with L^{-T}, which is shared by every row. The "cg" solver instead takes a few
conjugate-gradient steps from the previous x_u (Takacs, Pilaszy & Tikk, "Applications of
the conjugate gradient method for implicit feedback collaborative filtering", RecSys 2011),
O(k) per interaction and O(k^2) per row.

Layout: each side's interactions are held as padded rows in buckets of equal width (a power
of two >= the row's count), each bucket cut into blocks of about `block_slots(k, solver)`
interaction slots; padding slots carry confidence 0 and count nowhere. Every row of the
matrix, played or not, is in exactly one bucket. With a mesh, the blocks of each bucket are split over its `data`
axis (each device solves its own rows) and the factors are replicated, so one program
factorises a matrix too large for one device's solves.
"""
import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

DATA = "data"  # the mesh axis the rows are split over (mirjax/sharding.py)
SLOTS = 1 << 14  # the most interaction slots per block
CACHE_FLOATS = 1 << 16  # a block's gathered factors (slots x k floats, 256 KiB) stay in cache
MIN_WIDTH = 8  # narrowest bucket: rows with up to 8 interactions
SOLVERS = ("cholesky", "cg")


def confidence(counts, alpha: float = 40.0, scale: str = "linear", eps: float = 1.0) -> np.ndarray:
  """Hu et al.'s confidence of an observed count r: 1 + alpha r ("linear") or
  1 + alpha log(1 + r / eps) ("log"), as float32."""
  r = np.asarray(counts, np.float64)
  if scale == "linear":
    c = 1.0 + alpha * r
  elif scale == "log":
    c = 1.0 + alpha * np.log1p(r / eps)
  else:
    raise ValueError(f"confidence scale {scale!r}: choose 'linear' or 'log'")
  return c.astype(np.float32)


@dataclass(frozen=True)
class Layout:
  """One side of a sparse confidence matrix (rows x cols), padded in buckets.

  buckets: tuple of (rows (blocks, B) int32, cols (blocks, B, W) int32, conf (blocks, B, W)
  float32), one per width W; padding rows have index n_rows, padding slots conf 0."""
  buckets: tuple
  n_rows: int
  n_cols: int
  nnz: int


def layout(rows, cols, conf, n_rows: int, n_cols: int, *, shards: int = 1, slots: int = SLOTS) -> Layout:
  """The bucketed layout of interactions (rows[i], cols[i], conf[i]), each (row, col) at most
  once, with every bucket's block count a multiple of `shards` (the mesh's devices)."""
  rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
  conf = np.asarray(conf, np.float32)
  if not rows.shape == cols.shape == conf.shape or rows.ndim != 1:
    raise ValueError(f"rows, cols and conf must be 1-D of one length, got {rows.shape}, {cols.shape}, {conf.shape}")
  if rows.size and (rows.min() < 0 or rows.max() >= n_rows or cols.min() < 0 or cols.max() >= n_cols):
    raise ValueError(f"an interaction lies outside the {n_rows} x {n_cols} matrix")
  if rows.size and conf.min() <= 0:
    raise ValueError("confidences of observed entries must be > 0 (Hu et al.'s c = 1 + alpha r >= 1)")
  order = np.lexsort((cols, rows))
  rows, cols, conf = rows[order], cols[order], conf[order]
  counts = np.bincount(rows, minlength=n_rows)
  starts = np.concatenate([[0], np.cumsum(counts)])
  widths = np.maximum(MIN_WIDTH, 1 << np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64))
  buckets = []
  for w in np.unique(widths):
    members = np.flatnonzero(widths == w)
    per_block = max(1, slots // int(w))
    n_blocks = -(-members.size // per_block)
    n_blocks += -n_blocks % shards
    b_rows = np.full(n_blocks * per_block, n_rows, np.int32)
    b_rows[:members.size] = members
    b_cols = np.zeros((n_blocks * per_block, w), np.int32)
    b_conf = np.zeros((n_blocks * per_block, w), np.float32)
    # slot j of member m holds its j-th interaction
    lengths = counts[members]
    slot = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    member = np.repeat(np.arange(members.size), lengths)
    src = np.repeat(starts[members], lengths) + slot
    b_cols[member, slot], b_conf[member, slot] = cols[src], conf[src]
    buckets.append((b_rows.reshape(n_blocks, per_block), b_cols.reshape(n_blocks, per_block, w),
                    b_conf.reshape(n_blocks, per_block, w)))
  return Layout(tuple(buckets), int(n_rows), int(n_cols), int(rows.size))


def block_slots(factors: int, solver: str = "cg") -> int:
  """Interaction slots per block for k factors and a solver. "cg": the block's gathered item
  factors (slots x k) are read once per conjugate-gradient step, so they are kept to about
  256 KiB, in cache (on 2 CPU cores, k = 256: 0.48 s a half sweep with 256 slots, 1.3 s with
  16,384). "cholesky": 16 k slots, so a block holds about 16 k x k systems (k = 256, 20,000
  users with 1,000,000 plays on 2 CPU cores: 3.8 s a half sweep with 1,024 slots, 2.7 s
  with 4,096, 3.6 s with 16,384)."""
  k = max(int(factors), 1)
  if solver == "cholesky":
    return int(np.clip(16 * k, 256, SLOTS))
  return int(np.clip(CACHE_FLOATS // k, 256, SLOTS))


def layouts(rows, cols, conf, n_rows: int, n_cols: int, **kw) -> tuple[Layout, Layout]:
  """(by row, by column): the layouts of the matrix and of its transpose."""
  return layout(rows, cols, conf, n_rows, n_cols, **kw), layout(cols, rows, conf, n_cols, n_rows, **kw)


def place(lay: Layout, mesh) -> Layout:
  """The layout's arrays on the devices, blocks split over the mesh's `data` axis."""
  put = jnp.asarray if mesh is None else functools.partial(jax.device_put, device=NamedSharding(mesh, P(DATA)))
  return Layout(tuple(tuple(put(a) for a in b) for b in lay.buckets), lay.n_rows, lay.n_cols, lay.nnz)


def _gram(Y, reg):
  return Y.T @ Y + reg * jnp.eye(Y.shape[1], dtype=Y.dtype)


def _cho_solve(A, b, one_device: bool):
  """Solutions of the SPD systems A x = b (batched): one LAPACK batch, or row by row (see
  `solve_block`)."""
  solve = lambda A, b: jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(A), True), b[..., None])[..., 0]  # noqa: E731
  return solve(A, b) if one_device else jax.lax.map(lambda Ab: solve(*Ab), (A, b))


def whitener(G):
  """L^{-T} for G = L L^T (Cholesky), so G^{-1} = L^{-T} L^{-1}: shared by a half sweep's
  low-rank solves."""
  L = jnp.linalg.cholesky(G)
  return jax.scipy.linalg.solve_triangular(L, jnp.eye(G.shape[0], dtype=G.dtype), lower=True).T


def solve_block_low_rank(Y, W, cols, conf, one_device: bool = True):
  """Exact new factors (B, k) of one block's rows, as `solve_block`'s "cholesky", through the
  Woodbury identity: cheaper when a row has fewer interactions n than k/2. W = whitener(G).

  A = G + V^T V with V = sqrt(C^u - I) Y_u (n x k); with Z = V L^{-T} and c = L^{-1} b,
  A^{-1} b = L^{-T} (c - Z^T (I + Z Z^T)^{-1} Z c)   (the Woodbury identity on I + Z^T Z)."""
  Yg = Y[cols]  # (B, n, k)
  b = jnp.einsum("bwk,bw->bk", Yg, conf)  # Y^T C^u p(u)
  Z = jnp.einsum("bwk,kl->bwl", Yg * jnp.sqrt(jnp.where(conf > 0, conf - 1.0, 0.0))[..., None], W)
  c = b @ W
  M = jnp.einsum("bwk,bvk->bwv", Z, Z) + jnp.eye(Z.shape[1], dtype=Z.dtype)  # padding slots: rows of I
  t = _cho_solve(M, jnp.einsum("bwk,bk->bw", Z, c), one_device)
  return (c - jnp.einsum("bwk,bw->bk", Z, t)) @ W.T


def solve_block(X, Y, G, rows, cols, conf, solver: str, cg_steps: int, one_device: bool = True):
  """New factors (B, k) of one block's rows: exact (Hu et al., eq. 4) or `cg_steps` steps
  of conjugate gradients from their current factors X[rows]. G = Y^T Y + reg I.

  one_device=False (the block runs beside other CPU devices of a mesh): jaxlib's batched
  LAPACK kernels split a batch over the host's shared thread pool and wait for it, so two
  devices doing so at once can wait on each other forever; each row is then factorised and
  solved on its own (a batch of one runs in the calling thread)."""
  Yg = Y[cols]  # (B, W, k) the factors of each row's items
  extra = jnp.where(conf > 0, conf - 1.0, 0.0)  # c - 1 on observed entries, 0 on padding
  b = jnp.einsum("bwk,bw->bk", Yg, conf)  # Y^T C^u p(u): p = 1 exactly where c was given
  if solver == "cholesky":
    A = G + jnp.einsum("bwk,bwl->bkl", Yg * extra[..., None], Yg)
    return _cho_solve(A, b, one_device)

  def matvec(p):  # (Y^T C^u Y + reg I) p without forming it
    return p @ G + jnp.einsum("bwk,bw->bk", Yg, extra * jnp.einsum("bwk,bk->bw", Yg, p))

  x = X.at[rows].get(mode="clip")
  r = b - matvec(x)
  p, rs = r, jnp.sum(r * r, -1, keepdims=True)
  for _ in range(cg_steps):  # standard CG (Takacs et al. 2011, Algorithm 2), stopped once converged
    Ap = matvec(p)
    pAp = jnp.sum(p * Ap, -1, keepdims=True)
    step = jnp.where(rs > 1e-20, rs / jnp.where(pAp > 0, pAp, 1.0), 0.0)
    x, r = x + step * p, r - step * Ap
    rs_new = jnp.sum(r * r, -1, keepdims=True)
    p = r + jnp.where(rs > 1e-20, rs_new / jnp.where(rs > 0, rs, 1.0), 0.0) * p
    rs = rs_new
  return x


def half_sweep(X, Y, buckets, reg, *, solver: str = "cholesky", cg_steps: int = 3, mesh=None):
  """X with every row re-solved against Y (one half of an ALS sweep); `buckets` from the
  layout of X's side. With a mesh, each device solves the blocks it holds."""
  X, Y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
  G = _gram(Y, reg)
  k = X.shape[1]
  one_device = mesh is None or mesh.devices.size == 1 or mesh.devices.flat[0].platform != "cpu"
  solve = functools.partial(solve_block, solver=solver, cg_steps=cg_steps, one_device=one_device)
  low_rank = functools.partial(solve_block_low_rank, one_device=one_device)
  W = whitener(G) if solver == "cholesky" and any(b[1].shape[-1] <= k // 2 for b in buckets) else None

  def blocks(X, Y, G, W, rows, cols, conf):  # the blocks one device holds, one after another
    if W is not None and cols.shape[-1] <= k // 2:  # narrow rows: the Woodbury form
      return jax.lax.map(lambda a: low_rank(Y, W, *a[1:]), (rows, cols, conf))
    return jax.lax.map(lambda a: solve(X, Y, G, *a), (rows, cols, conf))

  if mesh is not None:
    blocks = jax.shard_map(blocks, mesh=mesh, in_specs=(P(), P(), P(), P(), P(DATA), P(DATA), P(DATA)),
                           out_specs=P(DATA))
  new = X
  for rows, cols, conf in buckets:
    out = blocks(X, Y, G, W, rows, cols, conf)
    new = new.at[rows.reshape(-1)].set(out.reshape(-1, X.shape[1]), mode="drop")  # padding rows drop
  return new


def _observed_loss(X, Y, rows, cols, conf):
  """sum over one block's observed cells of c (1 - s)^2 - s^2, s = x_u . y_i."""
  s = jnp.einsum("bk,bwk->bw", X.at[rows].get(mode="clip"), Y[cols])
  return jnp.sum(jnp.where(conf > 0, conf * (1.0 - s) ** 2 - s * s, 0.0))


def objective(X, Y, buckets, reg, *, mesh=None):
  """Hu et al.'s loss L(X, Y) (eq. 3, summed over every cell), from the layout of X's side:
  sum_{u,i} (x_u . y_i)^2 + sum over observed [c (1 - s)^2 - s^2] + reg (|X|^2 + |Y|^2)."""
  X, Y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
  def blocks(X, Y, rows, cols, conf):
    total = jnp.sum(jax.lax.map(lambda a: _observed_loss(X, Y, *a), (rows, cols, conf)))
    return total if mesh is None else jax.lax.psum(total, DATA)

  if mesh is not None:
    blocks = jax.shard_map(blocks, mesh=mesh, in_specs=(P(), P(), P(DATA), P(DATA), P(DATA)), out_specs=P())
  total = jnp.sum((X.T @ X) * (Y.T @ Y)) + reg * (jnp.sum(X * X) + jnp.sum(Y * Y))
  for rows, cols, conf in buckets:
    total += blocks(X, Y, rows, cols, conf)
  return total


@functools.lru_cache(maxsize=None)
def programs(mesh, solver: str, cg_steps: int):
  """(half sweep, objective) jitted for a mesh (None: one device): factors replicated."""
  sweep = functools.partial(half_sweep, solver=solver, cg_steps=cg_steps, mesh=mesh)
  loss = functools.partial(objective, mesh=mesh)
  if mesh is None:
    return jax.jit(sweep), jax.jit(loss)
  rep = NamedSharding(mesh, P())
  return (jax.jit(sweep, out_shardings=rep, donate_argnums=0),
          jax.jit(loss, out_shardings=rep))


class WMFResult(NamedTuple):
  user_factors: np.ndarray  # (n_users, k)
  item_factors: np.ndarray  # (n_items, k)
  objective: np.ndarray  # (sweeps + 1,) L(X, Y) at the start and after every sweep


def fit(users, items, conf, n_users: int, n_items: int, *, factors: int = 64, reg: float = 0.01,
        sweeps: int = 15, solver: str = "cg", cg_steps: int = 3, key=None, init=None, mesh=None,
        progress=None) -> WMFResult:
  """WMF of the confidences conf[i] of the observed (users[i], items[i]) by ALS.

  Parameters
  ----------
  users, items, conf : 1-D arrays of one length: the observed cells and their confidence
    c >= 1 (`confidence(counts, alpha)`); each cell at most once
  factors : k, the latent dimension
  reg : the l2 weight on the factors (Hu et al.'s lambda, not scaled by counts)
  sweeps : ALS sweeps (users, then items)
  solver : "cholesky" (exact solves) or "cg" (`cg_steps` conjugate-gradient steps per row,
    warm-started from the previous factors)
  key : jax PRNG key of the initial factors, N(0, 0.01^2) (default key 0)
  init : optional (user factors, item factors) to start from instead
  mesh : a jax Mesh with a "data" axis: rows are solved split over it
  progress : optional callable(sweep, objective) after each sweep

  Returns
  -------
  WMFResult (NumPy factors and the objective history)
  """
  if solver not in SOLVERS:
    raise ValueError(f"unknown WMF solver {solver!r}; choose one of {SOLVERS}")
  shards = 1 if mesh is None else mesh.devices.size
  by_user, by_item = (place(lay, mesh) for lay in layouts(users, items, conf, n_users, n_items, shards=shards,
                                                          slots=block_slots(factors, solver)))
  if init is None:
    ku, ki = jax.random.split(jax.random.key(0) if key is None else key)
    X = 0.01 * jax.random.normal(ku, (n_users, factors), jnp.float32)
    Y = 0.01 * jax.random.normal(ki, (n_items, factors), jnp.float32)
  else:
    X, Y = (jnp.asarray(a, jnp.float32) for a in init)
    if X.shape != (n_users, factors) or Y.shape != (n_items, factors):
      raise ValueError(f"init factors have shapes {X.shape}, {Y.shape}; want {(n_users, factors)}, {(n_items, factors)}")
  if mesh is not None:
    X, Y = (jax.device_put(a, NamedSharding(mesh, P())) for a in (X, Y))
  sweep, loss = programs(mesh, solver, int(cg_steps))
  history = [float(loss(X, Y, by_user.buckets, reg))]
  for s in range(sweeps):
    X = sweep(X, Y, by_user.buckets, reg)
    Y = sweep(Y, X, by_item.buckets, reg)
    history.append(float(loss(X, Y, by_user.buckets, reg)))
    if progress is not None:
      progress(s, history[-1])
  return WMFResult(np.asarray(X), np.asarray(Y), np.asarray(history))


def fold_in(users, items, conf, n_users: int, item_factors, *, reg: float = 0.01, mesh=None) -> np.ndarray:
  """Exact factors (n_users, k) of users from their interactions with items of fixed
  factors (a user unseen in training: one half sweep of Hu et al.'s eq. 4)."""
  Y = jnp.asarray(item_factors, jnp.float32)
  shards = 1 if mesh is None else mesh.devices.size
  lay = place(layout(users, items, conf, n_users, Y.shape[0], shards=shards,
                     slots=block_slots(Y.shape[1], "cholesky")), mesh)
  sweep, _ = programs(mesh, "cholesky", 0)
  X = jnp.zeros((n_users, Y.shape[1]), jnp.float32)
  if mesh is not None:
    X, Y = (jax.device_put(a, NamedSharding(mesh, P())) for a in (X, Y))
  return np.asarray(sweep(X, Y, lay.buckets, reg))
