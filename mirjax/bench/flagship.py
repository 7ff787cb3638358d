"""The flagship's train step, timed: shared by `mirjax.bench.train`, `.pipeline` and
`.accelerator`."""
import functools
import time

import jax
import numpy as np

from mirjax import sharding, steps
from mirjax.bench import common
from mirjax.data.info import Info
from mirjax.system import build_system

N_TAGS = 19  # as the embedded data


def synthetic_batch(n, seconds, seed=0):
  """n clips of `seconds` of noise at 16 kHz with random tags."""
  rng = np.random.default_rng(seed)
  return {"audio": (0.1 * rng.standard_normal((n, int(seconds * 16000)))).astype(np.float32),
          "tags": (rng.random((n, N_TAGS)) < 0.2).astype(np.uint8)}


def time_mirjax(config, batch, n_steps):
  """(seconds per step, FLOPs per step) of the sharded, jitted train step of `config` (its
  dtype and mesh settings included) on `batch`."""
  info = Info(name="synthetic", sample_rate=16000, tag_names=tuple(f"tag{i}" for i in range(N_TAGS)))
  system = build_system(config, info)
  mesh = sharding.make_mesh(-1)
  rep = sharding.replicated(mesh)
  placed = sharding.state_shardings(system.abstract_state, mesh, config.mesh)  # mesh.fsdp: split
  state = jax.jit(system.make_state, out_shardings=placed)(jax.random.key(0))
  step = jax.jit(functools.partial(steps.train_step, model=system.model, task=system.task,
                                   tx=system.tx, dtype=system.dtype),  # config.dtype
                 in_shardings=(placed, sharding.batch_sharding(mesh)),
                 out_shardings=(placed, rep), donate_argnums=0)
  b = sharding.to_global(batch, mesh)
  flops = common.flops(step, state, b)
  for _ in range(2):
    state, _ = step(state, b)
  jax.block_until_ready(state)
  t = time.perf_counter()
  for _ in range(n_steps):
    state, _ = step(state, b)
  jax.block_until_ready(state)
  return (time.perf_counter() - t) / n_steps, flops
