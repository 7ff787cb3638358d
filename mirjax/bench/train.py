"""The flagship's train step: `python -m mirjax.bench.train [--quick]`.

Times the jitted, sharded train step of configs/sincmodnet.py (SincModNet + short-chunk
CNN, AdamW) on synthetic 3 s batches over every device JAX sees, and prints: examples/s,
the model FLOP utilisation (XLA's FLOP count of the step / step time / the measured
float32 matmul peak of all devices at once), and the process's peak host memory. When
PyTorch is installed it times a PyTorch port of the same model and step
(`mirjax.bench.torch_port`) on the same batch and prints the ratio.
"""
import time

import jax
import numpy as np
from absl import app, flags, logging

from mirjax import config as config_lib, sharding
from mirjax.bench import common
from mirjax.bench.flagship import N_TAGS, synthetic_batch, time_mirjax

flags.DEFINE_integer("batch", 16, "Global batch (a multiple of the device count).")
flags.DEFINE_integer("steps", 20, "Timed steps (after two warm-up steps).")
flags.DEFINE_bool("torch", True, "Also time the PyTorch port when PyTorch is installed.")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "config.dtype of the mirjax step (bfloat16: mixed precision).")
flags.DEFINE_bool("quick", False, "Tiny sizes: checks that everything runs, in seconds.")
FLAGS = flags.FLAGS
def time_torch(config, batch, n_steps):
  """Seconds per step of the PyTorch port, or None when PyTorch is not installed."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  from mirjax.bench import torch_port  # pylint: disable=import-outside-toplevel
  model = torch_port.flagship(config.model, N_TAGS).train()
  step = torch_port.train_step_fn(model)
  audio, tags = torch.from_numpy(batch["audio"]), torch.from_numpy(batch["tags"].astype(np.float32))
  for _ in range(2):
    step(audio, tags)
  t = time.perf_counter()
  for _ in range(n_steps):
    step(audio, tags)
  return (time.perf_counter() - t) / n_steps


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  batch_size, n_steps = (2 * jax.device_count(), 2) if FLAGS.quick else (FLAGS.batch, FLAGS.steps)
  config = config_lib.from_file("sincmodnet")
  config.dtype = FLAGS.dtype
  seconds = 1.0 if FLAGS.quick else config.data.crop_seconds
  print(common.header("mirjax.bench.train"))
  peak = common.matmul_peak(512 if FLAGS.quick else 2048, mesh=sharding.make_mesh(-1))
  batch = synthetic_batch(batch_size, seconds)
  step_s, flops = time_mirjax(config, batch, n_steps)
  rss = common.peak_rss_mb()  # before PyTorch allocates anything
  n_dev = jax.device_count()
  print(f"flagship train step (configs/sincmodnet.py, {FLAGS.dtype}), batch {batch_size} x {seconds:g} s, "
        f"{n_dev} device(s), mean of {n_steps} steps")
  print(f"  mirjax:  {batch_size / step_s:8.1f} examples/s  ({1e3 * step_s:.1f} ms/step)")
  # XLA counts one device's share of the sharded step; the peak is of all devices at once
  print(f"  model FLOP utilisation: {100 * flops * n_dev / step_s / peak:.1f}% "
        f"({flops * n_dev / 1e9:.2f} GFLOP/step by XLA's count, peak {peak / 1e9:.1f} GFLOP/s "
        f"of the {n_dev} device(s))")
  torch_s = time_torch(config, batch, n_steps) if FLAGS.torch else None
  if torch_s is None:
    print("  PyTorch port: skipped (PyTorch is not installed: `pip install torch` to compare)")
  else:
    print(f"  PyTorch port: {batch_size / torch_s:8.1f} examples/s  ({1e3 * torch_s:.1f} ms/step)"
          f"  -> mirjax / PyTorch = {torch_s / step_s:.2f}x")
  print(f"  peak host memory of the mirjax run: {rss:.0f} MiB")


if __name__ == "__main__":
  app.run(main)
