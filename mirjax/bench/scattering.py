"""Scattering speed: `python -m mirjax.bench.scattering [--quick]`.

The 1-D scattering transform (order 2, J=8, Q=8 by default) of a batch of clips at 16 kHz
with mirjax (jitted, the batch sharded over every device) against kymatio's NumPy frontend
(`Scattering1D`, kymatio 0.3.0, the one a researcher would otherwise pick on a CPU) on the
same batch. Printed: clips/s of each, the ratio, and the largest relative difference (the
same coefficients). Needs `pip install kymatio` (a test and benchmark extra, not a runtime
dependency of mirjax).
"""
from mirjax.bench import one_host_device_per_core

one_host_device_per_core()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from mirjax import sharding  # noqa: E402
from mirjax.audio import scattering as sc  # noqa: E402
from mirjax.bench import common  # noqa: E402


def define_flags():
  """The command-line flags, defined when this file runs as a script (so the benches import side by side)."""
  flags.DEFINE_integer("batch", 32, "Clips in the batch.")
  flags.DEFINE_float("seconds", 3.0, "Length of each clip, seconds (16 kHz).")
  flags.DEFINE_integer("J", 8, "Octaves: averaging scale 2**J samples.")
  flags.DEFINE_integer("Q", 8, "First-order wavelets per octave (second order: 1).")
  flags.DEFINE_integer("repeats", 5, "Timed repetitions; the median is reported.")
  flags.DEFINE_bool("quick", False, "Tiny sizes: checks that everything runs, in seconds.")


FLAGS = flags.FLAGS
SR = 16000


def main(argv):
  del argv
  batch, seconds, repeats = (FLAGS.batch, FLAGS.seconds, FLAGS.repeats)
  if FLAGS.quick:
    batch, seconds, repeats = 2 * jax.device_count(), 0.25, 1
  length = int(seconds * SR)
  print(common.header("scattering"))
  kymatio = common.import_kymatio()
  rng = np.random.default_rng(0)
  x = (0.1 * rng.standard_normal((batch, length))).astype(np.float32)
  bank = sc.scattering_bank(length, FLAGS.J, FLAGS.Q)
  mesh = sharding.make_mesh()
  where = sharding.batch_sharding(mesh) if batch % mesh.size == 0 else sharding.replicated(mesh)
  xd = jax.device_put(x, where)
  fn = jax.jit(lambda v: sc.scatter(v, bank))
  got = np.asarray(fn(xd))
  t_mirjax = common.median_seconds(lambda: fn(xd).block_until_ready(), repeats)
  ref = kymatio.Scattering1D(J=FLAGS.J, shape=length, Q=FLAGS.Q)
  want = ref(x.astype(np.float64))
  t_kymatio = common.median_seconds(lambda: ref(x.astype(np.float64)), repeats)
  diff = np.abs(np.moveaxis(got, -1, -2) - want).max() / np.abs(want).max()
  print(f"scattering order 2, J={FLAGS.J}, Q=({FLAGS.Q}, 1), {batch} x {seconds:g} s, "
        f"{len(bank.paths)} paths x {bank.frames} frames")
  print(f"  mirjax   {batch / t_mirjax:9.1f} clips/s ({jax.device_count()} devices)")
  print(f"  kymatio  {batch / t_kymatio:9.1f} clips/s (NumPy frontend, float64)")
  print(f"  ratio    {t_kymatio / t_mirjax:9.2f}x   largest difference {diff:.1e} of the largest coefficient")


if __name__ == "__main__":
  define_flags()
  app.run(main)
