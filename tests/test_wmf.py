"""Weighted matrix factorisation by ALS against dense NumPy definitions and `implicit`."""
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from mirjax import sharding
from mirjax.unsupervised import wmf


def _plays(n_users=40, n_items=30, density=0.15, seed=0, heavy_row=None):
  rng = np.random.default_rng(seed)
  mask = rng.random((n_users, n_items)) < density
  if heavy_row is not None:  # one row played far more than the rest: a wide bucket
    mask[heavy_row] = rng.random(n_items) < 0.9
  u, i = np.nonzero(mask)
  counts = rng.geometric(0.3, u.size)
  return u, i, wmf.confidence(counts, alpha=2.0)


def _dense(u, i, c, shape):
  C = np.ones(shape)
  P = np.zeros(shape)
  C[u, i], P[u, i] = c, 1.0
  return C, P


def _loss(X, Y, C, P, reg):  # Hu et al. eq. 3 over every cell, in float64
  X, Y = X.astype(np.float64), Y.astype(np.float64)
  return np.sum(C * (P - X @ Y.T) ** 2) + reg * (np.sum(X * X) + np.sum(Y * Y))


def _exact_rows(Y, C, P, reg):  # x_u = (Y^T C^u Y + reg I)^-1 Y^T C^u p(u), row by row
  Y = Y.astype(np.float64)
  k = Y.shape[1]
  return np.stack([np.linalg.solve(Y.T @ (C[r][:, None] * Y) + reg * np.eye(k), Y.T @ (C[r] * P[r]))
                   for r in range(C.shape[0])])


def test_confidence_follows_hu_et_al():
  np.testing.assert_allclose(wmf.confidence([1, 4], alpha=40.0), [41.0, 161.0])
  np.testing.assert_allclose(wmf.confidence([1, 4], alpha=2.0, scale="log", eps=0.5),
                             1 + 2.0 * np.log1p(np.array([2.0, 8.0])), rtol=1e-6)
  with pytest.raises(ValueError, match="linear"):
    wmf.confidence([1], scale="sqrt")


def test_layout_holds_every_interaction_once_and_pads_with_zero_confidence():
  u, i, c = _plays(heavy_row=3)
  lay = wmf.layout(u, i, c, 40, 30, shards=8, slots=64)
  assert len(lay.buckets) >= 2  # the heavy row is in a wider bucket than the rest
  got = {}
  for rows, cols, conf in lay.buckets:
    assert rows.shape[0] % 8 == 0 and rows.shape[1] * cols.shape[2] <= max(64, cols.shape[2])
    for r, cs, cf in zip(rows.reshape(-1), cols.reshape(-1, cols.shape[2]), conf.reshape(-1, cols.shape[2])):
      if r == 40:
        assert not cf.any()
        continue
      assert r not in got
      got[int(r)] = dict(zip(cs[cf > 0].tolist(), cf[cf > 0].tolist()))
  assert sorted(got) == list(range(40))  # every row, played or not
  want = {}
  for a, b, v in zip(u, i, c):
    want.setdefault(int(a), {})[int(b)] = float(v)
  assert {r: d for r, d in got.items() if d} == want


def test_objective_equals_the_dense_definition():
  u, i, c = _plays()
  C, P = _dense(u, i, c, (40, 30))
  rng = np.random.default_rng(1)
  X, Y = rng.normal(size=(40, 6)).astype(np.float32), rng.normal(size=(30, 6)).astype(np.float32)
  lay = wmf.layout(u, i, c, 40, 30, slots=64)
  got = float(wmf.objective(X, Y, wmf.place(lay, None).buckets, 0.3))
  np.testing.assert_allclose(got, _loss(X, Y, C, P, 0.3), rtol=1e-5)


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_a_half_sweep_solves_every_row_as_hu_et_al(solver):
  """Cholesky: equal to the dense solve to 1e-4 relative. CG with k steps from any start
  reaches the exact solve of a k-dimensional system (exact arithmetic), so 6 steps at
  k = 6 agree to 1e-3 of the largest factor (float32 CG loses orthogonality a little)."""
  u, i, c = _plays(heavy_row=5)
  C, P = _dense(u, i, c, (40, 30))
  rng = np.random.default_rng(2)
  X, Y = rng.normal(size=(40, 6)).astype(np.float32), rng.normal(size=(30, 6)).astype(np.float32)
  lay = wmf.place(wmf.layout(u, i, c, 40, 30, slots=64), None)
  got = np.asarray(wmf.half_sweep(X, Y, lay.buckets, 0.5, solver=solver, cg_steps=6))
  want = _exact_rows(Y, C, P, 0.5)
  tol = 1e-3 if solver == "cg" else 1e-4
  np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_rows_with_few_plays_are_solved_exactly_by_the_woodbury_form():
  """At k = 24, rows of up to 12 plays take the low-rank (n x n) path and the heavy row the
  k x k one; both equal the dense solve, with confidences up to 1 + 40 * 20."""
  u, i, _ = _plays(40, 30, density=0.2, heavy_row=5)
  c = wmf.confidence(np.random.default_rng(9).integers(1, 21, u.size), alpha=40.0)
  C, P = _dense(u, i, c, (40, 30))
  rng = np.random.default_rng(10)
  X, Y = rng.normal(size=(40, 24)).astype(np.float32), (0.3 * rng.normal(size=(30, 24))).astype(np.float32)
  lay = wmf.place(wmf.layout(u, i, c, 40, 30, slots=64), None)
  widths = {b[1].shape[-1] for b in lay.buckets}
  assert min(widths) <= 12 < max(widths), widths
  got = np.asarray(wmf.half_sweep(X, Y, lay.buckets, 0.5, solver="cholesky"))
  want = _exact_rows(Y, C, P, 0.5)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
  W = np.asarray(wmf.whitener(wmf._gram(jnp.asarray(Y), 0.5)), np.float64)  # G^{-1} = W W^T
  G = Y.astype(np.float64).T @ Y + 0.5 * np.eye(24)
  np.testing.assert_allclose(W @ W.T @ G, np.eye(24), atol=1e-4)


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_als_decreases_the_objective_every_sweep(solver):
  u, i, c = _plays(60, 50, seed=3)
  res = wmf.fit(u, i, c, 60, 50, factors=5, reg=0.1, sweeps=6, solver=solver)
  C, P = _dense(u, i, c, (60, 50))
  np.testing.assert_allclose(res.objective[-1], _loss(res.user_factors, res.item_factors, C, P, 0.1), rtol=1e-4)
  assert np.all(np.diff(res.objective) <= 1e-5 * res.objective[:-1]), res.objective


@pytest.mark.parametrize("factors", [4, 16])  # 16: narrow rows take the Woodbury form
def test_sharded_als_equals_one_device(factors):
  u, i, c = _plays(64, 48, seed=4, heavy_row=7)
  one = wmf.fit(u, i, c, 64, 48, factors=factors, reg=0.1, sweeps=3, solver="cholesky")
  eight = wmf.fit(u, i, c, 64, 48, factors=factors, reg=0.1, sweeps=3, solver="cholesky",
                  mesh=sharding.make_mesh(8))
  np.testing.assert_allclose(eight.user_factors, one.user_factors, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(eight.objective, one.objective, rtol=1e-5)


def test_exact_als_at_64_factors_finishes_on_8_devices():
  """Batched LAPACK solves running on several host devices at once used to wait on each
  other for ever (at 64 factors, blocks of 256 rows); run where a hang cannot stop the suite."""
  code = (  # about 3,000 users x 400 items, 30,000 plays
      "import numpy as np; from mirjax import sharding; from mirjax.unsupervised import wmf\n"
      "cells = np.unique(np.random.default_rng(0).integers(0, 3000 * 400, 30000))\n"
      "u, i = cells // 400, cells % 400\n"
      "kw = dict(factors=64, sweeps=1, solver='cholesky')\n"
      "one = wmf.fit(u, i, wmf.confidence(np.ones(u.size)), 3000, 400, **kw)\n"
      "eight = wmf.fit(u, i, wmf.confidence(np.ones(u.size)), 3000, 400, mesh=sharding.make_mesh(8), **kw)\n"
      "np.testing.assert_allclose(eight.objective, one.objective, rtol=1e-4)\n"
      "print('ok', eight.objective)\n")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=env)
  assert p.returncode == 0 and "ok" in p.stdout, p.stderr[-3000:]


def test_fold_in_is_the_exact_solve_for_new_users():
  u, i, c = _plays(10, 30, seed=5)
  C, P = _dense(u, i, c, (10, 30))
  Y = np.random.default_rng(6).normal(size=(30, 4)).astype(np.float32)
  np.testing.assert_allclose(wmf.fold_in(u, i, c, 10, Y, reg=0.2), _exact_rows(Y, C, P, 0.2), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("use_cg,factors", [(False, 8), (False, 32), (True, 8)])  # 32: the Woodbury form
def test_als_reaches_the_objective_of_implicit_from_the_same_start(use_cg, factors):
  """implicit takes the confidence matrix itself (c where played, 1 elsewhere), so passing
  Hu et al.'s c = 1 + alpha r reproduces the same problem; same start, same sweeps."""
  implicit_als = pytest.importorskip("implicit.cpu.als")
  import threadpoolctl
  from scipy.sparse import csr_matrix
  u, i, c = _plays(80, 60, density=0.1, seed=7)
  rng = np.random.default_rng(8)
  X0, Y0 = ((0.1 * rng.normal(size=(n, factors))).astype(np.float32) for n in (80, 60))
  with threadpoolctl.threadpool_limits(1, "blas"):  # as implicit asks: its own threads, BLAS on one
    model = implicit_als.AlternatingLeastSquares(factors=factors, regularization=0.1, iterations=5, use_cg=use_cg,
                                                 num_threads=1, random_state=0)
    model.user_factors, model.item_factors = X0.copy(), Y0.copy()
    model.fit(csr_matrix((c, (u, i)), shape=(80, 60)), show_progress=False)
  ours = wmf.fit(u, i, c, 80, 60, factors=factors, reg=0.1, sweeps=5, solver="cg" if use_cg else "cholesky",
                 init=(X0, Y0))
  C, P = _dense(u, i, c, (80, 60))
  theirs = _loss(model.user_factors, model.item_factors, C, P, 0.1)
  assert ours.objective[-1] <= theirs * (1 + 1e-4), (ours.objective[-1], theirs)
  if not use_cg:  # the same exact solves: the same factors
    np.testing.assert_allclose(ours.user_factors, model.user_factors, rtol=1e-3, atol=1e-4)
