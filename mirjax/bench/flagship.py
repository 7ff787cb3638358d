"""The timed train step and training input, and the models timed: shared by
`mirjax.bench.train`, `.pipeline` and `.accelerator`."""
import functools
import time

import jax
import numpy as np

from mirjax import config as config_lib, sharding, steps
from mirjax.bench import common
from mirjax.data import pipeline
from mirjax.data.info import Info
from mirjax.system import build_system

N_TAGS = 19  # as the embedded data


def synthetic_batch(n, seconds, seed=0):
  """n clips of `seconds` of noise at 16 kHz with random tags."""
  rng = np.random.default_rng(seed)
  return {"audio": (0.1 * rng.standard_normal((n, int(seconds * 16000)))).astype(np.float32),
          "tags": (rng.random((n, N_TAGS)) < 0.2).astype(np.uint8)}


def mirjax_step(config, batch, memory=None):
  """(run, FLOPs per step) of the sharded, jitted train step of `config` (its dtype and mesh
  settings included) on `batch`, compiled and warmed up by two steps: `run(n)` takes n more
  steps and returns the seconds per step. A dict `memory` receives XLA's memory plan of the
  compiled step on one device: "bytes", its arguments, outputs and temporaries (what the
  step needs resident at its peak)."""
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
  compiled = step.lower(state, b).compile()
  flops = common.flops_of(compiled)
  if memory is not None:
    m = compiled.memory_analysis()
    memory["bytes"] = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                       - m.alias_size_in_bytes) if m is not None else float("nan")
  held = [state]

  def run(n_steps):
    s = held[0]
    t = time.perf_counter()
    for _ in range(n_steps):
      s, _ = step(s, b)
    jax.block_until_ready(s)
    held[0] = s
    return (time.perf_counter() - t) / n_steps
  run(2)
  return run, flops


def won_config(quick: bool = False):
  """(config, description) of the log-mel short-chunk CNN at Won et al.'s published size
  (configs/melcnn.py:mtat: 128 mels, 7 blocks of 128-512 channels; crops of WON_SECONDS),
  trained by AdamW (the first optimiser of their protocol; the schedule is not what is
  timed). `quick`: their depth at 1/16 of the widths."""
  won = config_lib.from_file("melcnn", "mtat")
  won.optim.name, won.optim.learning_rate = "adamw", 1e-4
  won.train.num_steps, won.train.num_epochs = 10_000, 0.0
  if not quick:
    return won, "log-mel short-chunk CNN at Won et al.'s size (configs/melcnn.py:mtat)"
  won.model.backend.channels = tuple(max(8, c // 16) for c in won.model.backend.channels)
  return won, "log-mel short-chunk CNN, Won et al.'s depth at 1/16 width"


WON_SECONDS = 59049 / 16000  # their crop: the 7 poolings need its 231 frames


def input_rate(source, *, batch: int, crop: int, threads: int, n_batches: int, mesh, workers: int = 0) -> float:
  """Examples/s of training batches made ready on the mesh's devices, read by `threads`
  threads in this process or, with `workers` > 0, by that many worker processes of
  `threads` threads each."""
  it = pipeline.train_iterator(source, local_batch=sharding.local_batch_size(batch, mesh), crop=crop,
                               seed=0, target="tags", read_threads=threads, worker_processes=workers)
  try:
    for _ in range(3 + workers):  # the threads (and workers) start and the first reads warm the caches
      jax.block_until_ready(sharding.to_global(next(it), mesh))
    t = time.perf_counter()
    for _ in range(n_batches):
      jax.block_until_ready(sharding.to_global(next(it), mesh))
    return batch * n_batches / (time.perf_counter() - t)
  finally:
    if hasattr(it, "close"):
      it.close()
