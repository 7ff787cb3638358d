"""WMF speed: `python -m mirjax.bench.wmf [--quick]`.

Seconds per ALS sweep (every user's factors re-solved, then every item's) of weighted
matrix factorisation (Hu, Koren & Volinsky 2008) on a synthetic play-count matrix
(100,000 users x 20,000 songs, about 5,000,000 plays by default: song popularity and user
activity heavy-tailed, a fixed seed; confidence 1 + 40 r), at 64 and 256 factors, mirjax
against `implicit`'s CPU ALS on the same matrix, the same start and the same
regularisation. Printed per solver and factor count:

  mirjax     the jitted half sweeps `wmf.fit` runs (`wmf.programs`), the layouts already on
             the devices (blocks of `wmf.block_slots(k, solver)` slots split over the `data`
             axis of a mesh of every device) and compiled before timing; the time from the
             first call until the item factors are ready.
  implicit   `implicit.cpu._als.least_squares_cg` / `least_squares`, the functions its
             `AlternatingLeastSquares.fit` calls twice per iteration (on the CSR matrix and
             its transpose, both built before timing), with its own threads (one per core)
             and BLAS on one thread, as implicit asks.

"cg" is 3 conjugate-gradient steps per row from the previous factors (implicit's default);
"cholesky" the exact solves. The ratio is implicit's seconds over mirjax's. The objective
line is Hu et al.'s loss after one sweep from the same start, by each.

Needs `pip install implicit` (a test and benchmark extra, not a dependency of mirjax).
"""
from mirjax.bench import one_host_device_per_core

one_host_device_per_core()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from mirjax import sharding  # noqa: E402
from mirjax.bench import common  # noqa: E402
from mirjax.unsupervised import wmf  # noqa: E402


def define_flags():
  """The command-line flags, defined when this file runs as a script (so the benches import side by side)."""
  flags.DEFINE_integer("users", 100_000, "Users (rows).")
  flags.DEFINE_integer("songs", 20_000, "Songs (columns).")
  flags.DEFINE_integer("plays", 5_000_000, "Distinct (user, song) cells with plays.")
  flags.DEFINE_list("factors", ["64", "256"], "Factor counts to time.")
  flags.DEFINE_list("solvers", ["cg", "cholesky"], "Solvers to time: cg, cholesky.")
  flags.DEFINE_float("reg", 0.1, "The l2 regularisation of both.")
  flags.DEFINE_integer("repeats", 3, "Timed sweeps; the median is reported.")
  flags.DEFINE_bool("quick", False, "Tiny sizes: checks that everything runs, in seconds.")


FLAGS = flags.FLAGS


def synthetic_plays(n_users: int, n_songs: int, n_plays: int, seed: int = 0):
  """(users, songs, counts) of about n_plays distinct cells: songs drawn with Zipf-like
  popularity (weight 1 / rank^0.8), users with log-normal activity, counts 1 + geometric."""
  rng = np.random.default_rng(seed)
  song_p = 1.0 / np.arange(1, n_songs + 1) ** 0.8
  song_p = song_p[rng.permutation(n_songs)] / song_p.sum()
  user_p = rng.lognormal(0.0, 1.0, n_users)
  user_p /= user_p.sum()
  draws = int(n_plays * 1.15)  # some draws repeat a cell
  cells = np.unique(rng.choice(n_users, draws, p=user_p).astype(np.int64) * n_songs
                    + rng.choice(n_songs, draws, p=song_p))
  cells = rng.permutation(cells)[:n_plays]
  return (cells // n_songs).astype(np.int32), (cells % n_songs).astype(np.int32), rng.geometric(0.4, cells.size)


def main(argv):
  del argv
  n_users, n_songs, n_plays, repeats = FLAGS.users, FLAGS.songs, FLAGS.plays, FLAGS.repeats
  factor_list = [int(f) for f in FLAGS.factors]
  if FLAGS.quick:
    n_users, n_songs, n_plays, repeats, factor_list = 2000, 500, 20_000, 1, [16]
  print(common.header("wmf"))
  # implicit is a benchmark extra: imported here, never by mirjax itself.
  # pylint: disable=import-outside-toplevel
  from implicit.cpu import _als
  from scipy.sparse import csr_matrix
  from threadpoolctl import threadpool_limits

  users, songs, counts = synthetic_plays(n_users, n_songs, n_plays)
  conf = wmf.confidence(counts, alpha=40.0)
  Cui = csr_matrix((conf, (users, songs)), shape=(n_users, n_songs))
  Ciu = Cui.T.tocsr()
  mesh = sharding.make_mesh()
  rep = sharding.replicated(mesh)
  print(f"WMF, one ALS sweep: {n_users} users x {n_songs} songs, {users.size} plays "
        f"({users.size / n_users / n_songs:.2%} dense), reg {FLAGS.reg}")
  for k in factor_list:
    rng = np.random.default_rng(k)
    X0, Y0 = ((0.01 * rng.standard_normal((n, k))).astype(np.float32) for n in (n_users, n_songs))
    for solver in FLAGS.solvers:
      by_user, by_song = (wmf.place(lay, mesh) for lay in wmf.layouts(
          users, songs, conf, n_users, n_songs, shards=mesh.devices.size, slots=wmf.block_slots(k, solver)))
      sweep, loss = wmf.programs(mesh, solver, 3)
      start = lambda: tuple(jax.device_put(a, rep) for a in (X0, Y0))  # noqa: E731

      def ours():
        X, Y = start()
        X = sweep(X, Y, by_user.buckets, FLAGS.reg)
        Y = sweep(Y, X, by_song.buckets, FLAGS.reg)
        return jax.block_until_ready((X, Y))

      X, Y = ours()  # compiles both half sweeps
      t_ours = common.median_seconds(ours, repeats, warmup=0)
      obj_ours = float(loss(X, Y, by_user.buckets, FLAGS.reg))

      solve = _als.least_squares_cg if solver == "cg" else _als.least_squares
      Xi, Yi = X0.copy(), Y0.copy()

      def theirs():
        Xi[:], Yi[:] = X0, Y0
        with threadpool_limits(1, "blas"):
          solve(Cui, Xi, Yi, FLAGS.reg, num_threads=0)
          solve(Ciu, Yi, Xi, FLAGS.reg, num_threads=0)

      t_theirs = common.median_seconds(theirs, repeats, warmup=0)
      obj_theirs = float(loss(jax.device_put(Xi, rep), jax.device_put(Yi, rep), by_user.buckets, FLAGS.reg))
      print(f"  k = {k:3d} {solver:8s}  mirjax {t_ours:8.3f} s   implicit {t_theirs:8.3f} s   "
            f"ratio {t_theirs / t_ours:5.2f}x   objective {obj_ours:.6g} mirjax, {obj_theirs:.6g} implicit")
  print(f"  {jax.device_count()} devices; peak host memory {common.peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
  define_flags()
  app.run(main)
