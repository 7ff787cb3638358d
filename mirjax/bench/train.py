"""Train steps against PyTorch at its best: `python -m mirjax.bench.train [--quick]`.

Times the jitted, sharded train step (AdamW) of two models on synthetic batches over every
device JAX sees:
  - the flagship, configs/sincmodnet.py (SincModNet + short-chunk CNN), 3 s crops;
  - the log-mel short-chunk CNN at Won et al.'s published size (configs/melcnn.py:mtat: 128
    mels, 7 blocks of 128-512 channels, 59,049-sample crops), batch 16;
and, when PyTorch is installed, a PyTorch port of each (`mirjax.bench.torch_port`) in
PyTorch's three usual settings: eager NCHW (its default), eager channels_last and
torch.compile. Both sides start from the same weights (mirjax's initial state, copied into
the port), and before anything is timed they are checked to compute the same function: on
the timed batch, in float32 (whatever --dtype), in train mode (every batch norm on the
batch's own statistics, as in the step) with dropout off, the logits, the loss, the
gradients, the updated batch statistics and then eval-mode logits must agree within
`torch_port.TOLERANCES` (1e-4 of the output's scale; see there), or the benchmark stops.
The sides are interleaved: each of `--rounds` rounds times `--steps` steps of mirjax and
then of each PyTorch setting, so all see the same machine; each figure is the median over
rounds. Printed: the differences, examples/s and ms/step of each, mirjax's model FLOP
utilisation (XLA's FLOP count of the step / step time / the measured float32 matmul peak of
all devices at once), and mirjax's ratio to PyTorch's fastest setting.
"""
import statistics
import sys

import jax
import numpy as np
from absl import app, flags, logging

from mirjax import config as config_lib, sharding
from mirjax.bench import common
from mirjax.bench.flagship import N_TAGS, WON_SECONDS, mirjax_step, synthetic_batch, won_config


def define_flags():
  """The command-line flags, defined when this file runs as a script (so the benches import side by side)."""
  flags.DEFINE_integer("batch", 16, "Global batch (a multiple of the device count).")
  flags.DEFINE_integer("steps", 10, "Timed steps per side and round (after warm-up steps).")
  flags.DEFINE_integer("rounds", 3, "Interleaved rounds; each figure is the median over them.")
  flags.DEFINE_list("models", ["flagship", "won"], "Which models: flagship, won.")
  flags.DEFINE_bool("torch", True, "Also time the PyTorch ports when PyTorch is installed.")
  flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "config.dtype of the mirjax step (bfloat16: mixed precision).")
  flags.DEFINE_bool("quick", False, "Tiny sizes: checks that everything runs, in seconds.")


FLAGS = flags.FLAGS


def models(quick: bool):
  """{key: (description, config, crop seconds, torch port name)}."""
  flag = config_lib.from_file("sincmodnet")
  won, won_name = won_config(quick)
  return {"flagship": ("flagship (configs/sincmodnet.py)", flag, 1.0 if quick else flag.data.crop_seconds, "flagship"),
          "won": (won_name, won, WON_SECONDS, "melcnn")}


def _torch_port():
  """mirjax.bench.torch_port, or None when PyTorch is not installed."""
  try:
    import torch  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    return None
  from mirjax.bench import torch_port  # pylint: disable=import-outside-toplevel
  return torch_port


def same_function(port: str, config, batch, name: str):
  """The lines reporting `torch_port.compare` of mirjax's model and its port on `batch`;
  exits with the differences when they exceed `torch_port.TOLERANCES`."""
  torch_port = _torch_port()
  diffs = torch_port.compare(config, batch, port)
  lines = ["  same weights on both sides (mirjax's initial state), float32, train mode (batch statistics), "
           "dropout off; largest |mirjax - PyTorch|, relative (to the output's scale; gradients: "
           "to the leaf's norm) and the tolerance:"]
  for k, (diff, rel, where) in diffs.items():
    lines.append(f"    {k + ':':21s} {diff:.2e}  relative {rel:.2e} <= {torch_port.TOLERANCES[k]:g}"
                 + (f"  (worst: {where})" if where else ""))
  try:
    torch_port.check(diffs)
  except ValueError as e:
    sys.exit("\n".join([f"{name}:"] + lines + [f"stopped: {e}"]))
  return lines


def torch_steps(port: str, config, batch):
  """{PyTorch setting: run(n) -> seconds per step} of the port's AdamW step on `batch` (the
  config's weight decay and clipping), each port holding mirjax's initial weights and each
  warmed up (torch.compile compiles there), or None when PyTorch is not installed."""
  torch_port = _torch_port()
  if torch_port is None:
    return None
  import time  # pylint: disable=import-outside-toplevel

  import torch  # pylint: disable=import-outside-toplevel
  params, model_state, _ = torch_port.initial_variables(config)  # seed 0, as mirjax_step
  audio, tags = torch.from_numpy(batch["audio"]), torch.from_numpy(batch["tags"].astype(np.float32))
  o = config.optim
  runs = {}
  for mode in torch_port.MODES:
    torch.manual_seed(0)  # dropout
    model = torch_port.load_mirjax(getattr(torch_port, port)(config.model, N_TAGS), params, model_state)
    step = torch_port.train_step_fn(model.train(), lr=o.learning_rate or 1e-3, mode=mode,
                                    weight_decay=o.weight_decay, clip_norm=o.clip_norm)

    def run(n, step=step):
      t = time.perf_counter()
      for _ in range(n):
        step(audio, tags)
      return (time.perf_counter() - t) / n
    run(3 if mode == "torch.compile" else 2)
    runs[mode] = run
  return runs


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  batch_size = 2 * jax.device_count() if FLAGS.quick else FLAGS.batch
  n_steps, rounds = (2, 1) if FLAGS.quick else (FLAGS.steps, FLAGS.rounds)
  print(common.header("mirjax.bench.train"))
  peak = common.matmul_peak(512 if FLAGS.quick else 2048, mesh=sharding.make_mesh(-1))
  n_dev = jax.device_count()
  table = models(FLAGS.quick)
  rss = None
  for key in FLAGS.models:
    name, config, seconds, port = table[key]
    config.dtype = FLAGS.dtype
    batch = synthetic_batch(batch_size, seconds)
    run, flops = mirjax_step(config, batch)
    rss = common.peak_rss_mb() if rss is None else rss  # before PyTorch allocates anything
    use_torch = FLAGS.torch and _torch_port() is not None
    checked = same_function(port, config, batch, name) if use_torch else []  # before any timing
    torch_runs = torch_steps(port, config, batch) if use_torch else None
    times = {"mirjax": []}
    for _ in range(rounds):
      times["mirjax"].append(run(n_steps))
      for mode, t_run in (torch_runs or {}).items():
        times.setdefault(mode, []).append(t_run(n_steps))
    med = {k: statistics.median(v) for k, v in times.items()}
    step_s = med["mirjax"]
    print(f"{name} ({FLAGS.dtype}), batch {batch_size} x {seconds:g} s, {n_dev} device(s), "
          f"median of {rounds} interleaved round(s) of {n_steps} steps")
    for line in checked:
      print(line)
    print(f"  mirjax:  {batch_size / step_s:8.1f} examples/s  ({1e3 * step_s:.1f} ms/step)")
    # XLA counts one device's share of the sharded step; the peak is of all devices at once
    print(f"  model FLOP utilisation: {100 * flops * n_dev / step_s / peak:.1f}% "
          f"({flops * n_dev / 1e9:.2f} GFLOP/step by XLA's count, peak {peak / 1e9:.1f} GFLOP/s "
          f"of the {n_dev} device(s))")
    if torch_runs is None:
      print("  PyTorch port: skipped (PyTorch is not installed: `pip install torch` to compare)")
      continue
    for mode in torch_runs:
      print(f"  PyTorch {mode}: {batch_size / med[mode]:8.1f} examples/s  ({1e3 * med[mode]:.1f} ms/step)")
    fastest = min(torch_runs, key=med.get)
    print(f"  -> mirjax / PyTorch's fastest ({fastest}) = {med[fastest] / step_s:.2f}x")
  print(f"  peak host memory of the mirjax run: {rss:.0f} MiB")


if __name__ == "__main__":
  define_flags()
  app.run(main)
