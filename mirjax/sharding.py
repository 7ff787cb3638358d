"""Device mesh and shardings: data parallel over every device of every process.

Batches are split along the mesh's `data` axis; host batches are per-process shards that
become one global jax.Array. Parameters and optimizer state are replicated, or with
`mesh.fsdp` sharded over the same axis (fully sharded data parallel: each device holds
1/N of every large array, and XLA gathers a layer's parameters where it uses them and
reduce-scatters their gradients), so a model too big for one chip trains on many.
"""
import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from mirjax.errors import ConfigError

DATA = "data"


def make_mesh(num_devices: int = -1) -> jax.sharding.Mesh:
  """A 1-D `data` mesh over `num_devices` devices (-1: all devices of all processes)."""
  n = jax.device_count() if num_devices in (-1, None) else num_devices
  if n > jax.device_count():
    raise ConfigError(f"mesh asks for {n} devices but only {jax.device_count()} are visible; "
                     "set --config.mesh.num_devices=-1 to use them all")
  return jax.make_mesh((n,), (DATA,), axis_types=(AxisType.Auto,), devices=jax.devices()[:n])


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def fsdp_sharding(shape, mesh, min_size: int = 2 ** 14) -> NamedSharding:
  """An array of `shape` split over `data` along its largest axis that the mesh divides
  evenly, or replicated when it is smaller than `min_size` elements (a gather would cost
  more than the memory saved) or no axis divides."""
  n = mesh.devices.size
  axes = [i for i, d in enumerate(shape) if d % n == 0 and d >= n]
  if n == 1 or int(np.prod(shape, dtype=np.int64)) < min_size or not axes:
    return replicated(mesh)
  axis = max(axes, key=lambda i: (shape[i], -i))  # the largest; the first of equals
  return NamedSharding(mesh, P(*[DATA if i == axis else None for i in range(len(shape))]))


def state_shardings(abstract_state, mesh, cfg=None):
  """Where each leaf of a train state lives: replicated, or with `cfg.fsdp` (the config's
  `mesh` section) each large parameter and optimizer-state array split over `data`
  (`fsdp_sharding`, arrays of at least `cfg.fsdp_min_size` elements)."""
  if cfg is None or not cfg.get("fsdp", False):
    return jax.tree.map(lambda _: replicated(mesh), abstract_state)
  min_size = int(cfg.get("fsdp_min_size", 2 ** 14))
  return jax.tree.map(lambda x: fsdp_sharding(tuple(getattr(x, "shape", ())), mesh, min_size), abstract_state)


def batch_sharding(mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`, every other axis whole."""
  return NamedSharding(mesh, P(DATA))


def local_batch_size(global_batch_size: int, mesh, name: str = "train.batch_size") -> int:
  """This process's share of a global batch; the batch (the config field `name`) must
  split evenly over devices and processes."""
  n_dev, n_proc = mesh.devices.size, jax.process_count()
  if global_batch_size < 1 or global_batch_size % n_dev or global_batch_size % n_proc:
    raise ConfigError(f"{name}={global_batch_size} must be a positive multiple of the {n_dev} devices "
                      f"and {n_proc} processes of the mesh: set --config.{name} to a multiple of "
                      f"{max(n_dev, n_proc)}")
  return global_batch_size // n_proc


def to_global(local_batch: dict, mesh) -> dict:
  """Per-process host arrays -> global arrays sharded along `data`."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}
