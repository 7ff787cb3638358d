"""Device mesh and shardings: data parallel over every device of every process.

Parameters and optimizer state are replicated; batches are split along the mesh's
`data` axis. Host batches are per-process shards that become one global jax.Array.
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
