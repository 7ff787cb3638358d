"""What every benchmark shares: medians of repeated timings, the machine's float32 matmul
peak, XLA's FLOP count of a jitted function, and a plain table."""
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np


def header(name: str) -> str:
  """One line naming the benchmark, the devices and the versions."""
  devs = jax.devices()
  return (f"{name}: {len(devs)} x {devs[0].device_kind} ({devs[0].platform}), "
          f"{jax.process_count()} process(es), jax {jax.__version__}, python {sys.version.split()[0]}")


def median_seconds(fn, repeats: int = 5, warmup: int = 1) -> float:
  """Median wall time of `fn()` in seconds over `repeats` calls after `warmup` calls; `fn`
  must block until its work is done (e.g. end in `jax.block_until_ready`)."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def flops(jitted, *args) -> float:
  """XLA's count of the floating-point operations of one call of a jitted function, per
  device: a program sharded over N devices does N times this much work in all."""
  return flops_of(jitted.lower(*args).compile())


def flops_of(compiled) -> float:
  """XLA's FLOP count of a compiled function (`jitted.lower(...).compile()`), per device."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
    cost = cost[0]
  return float(cost.get("flops", float("nan")))


def matmul_peak(n: int = 2048, repeats: int = 5, mesh=None) -> float:
  """Measured float32 matmul throughput (FLOP/s): an n x n by n x n product on device 0, or
  with a `mesh`, one such product on every device at once (rows of a (devices * n) x n
  operand sharded over the mesh): the peak the other figures are compared with."""
  rng = np.random.default_rng(0)
  if mesh is None:
    a = b = jax.device_put(jnp.asarray(rng.standard_normal((n, n)), jnp.float32))
    copies = 1
  else:
    copies = mesh.size
    rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(mesh.axis_names[0]))
    a = jax.device_put(jnp.asarray(rng.standard_normal((copies * n, n)), jnp.float32), rows)
    b = jax.device_put(a[:n], jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  f = jax.jit(lambda x, y: x @ y)
  seconds = median_seconds(lambda: f(a, b).block_until_ready(), repeats)
  return 2.0 * copies * n ** 3 / seconds


def peak_rss_mb() -> float:
  """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def import_kymatio():
  """kymatio (0.3.0, its last release), importable on a current SciPy: its 3-D scattering
  imports `scipy.special.sph_harm`, which SciPy 1.17 removed; it is defined from
  `sph_harm_y` (argument order: sph_harm(m, n, theta, phi) = sph_harm_y(n, m, phi, theta))."""
  import scipy.special  # pylint: disable=import-outside-toplevel
  if not hasattr(scipy.special, "sph_harm"):
    scipy.special.sph_harm = lambda m, n, theta, phi: scipy.special.sph_harm_y(n, m, phi, theta)
  import kymatio.numpy  # pylint: disable=import-outside-toplevel
  return kymatio.numpy
