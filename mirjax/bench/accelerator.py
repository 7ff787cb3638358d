"""Train steps on an accelerator: `python -m mirjax.bench.accelerator [--quick]`.

Meant for one GPU or TPU chip, in under 5 minutes: the train step of the flagship
(configs/sincmodnet.py, 3 s crops) and of the log-mel short-chunk CNN at Won et al.'s size
(configs/melcnn.py:mtat: 128 mels, 7 blocks of 128-512 channels, 59,049-sample crops; AdamW
here, the first optimiser of their protocol), each at a batch that fills a chip, in float32
and in mixed bfloat16 (config.dtype). For each: examples/s, step time, the model FLOP
utilisation (XLA's FLOP count of the step / step time / the chip's dense bfloat16 peak,
looked up by device kind: `PEAK_BF16`, or `--peak_tflops`; a kind not listed is compared
with the float32 matmul peak measured here, and says so), and the device memory the
compiled step needs (XLA's plan: arguments, outputs, temporaries). Then the input
pipeline's examples/s on this host (`mirjax.bench.pipeline`, every core's read threads, the
embedded smoke clips: the same 10 s clips as the default data, built in seconds) against the
fastest step. On a CPU it runs too (one host device per core); `--quick` shrinks everything.
"""
import math

from mirjax.bench import one_host_device_per_core

one_host_device_per_core()

import jax  # noqa: E402  pylint: disable=wrong-import-position
from absl import app, flags, logging  # noqa: E402  pylint: disable=wrong-import-position

from mirjax import config as config_lib, sharding  # noqa: E402  pylint: disable=wrong-import-position
from mirjax.bench import common, flagship  # noqa: E402  pylint: disable=wrong-import-position
from mirjax.data import parallel, pipeline  # noqa: E402  pylint: disable=wrong-import-position


def define_flags():
  """The command-line flags, defined when this file runs as a script (so the benches import side by side)."""
  flags.DEFINE_integer("flagship_batch", 256, "Global batch of the flagship's step.")
  flags.DEFINE_integer("won_batch", 64, "Global batch of the Won-size log-mel CNN's step.")
  flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "config.dtype values to time.")
  flags.DEFINE_integer("steps", 20, "Timed steps (after two warm-up steps).")
  flags.DEFINE_float("peak_tflops", 0.0, "The chip's dense bfloat16 peak, TFLOP/s (0: looked up by device kind).")
  flags.DEFINE_bool("quick", False, "Tiny sizes: checks that everything runs, in seconds.")


FLAGS = flags.FLAGS

# Dense (not sparse) bfloat16 peaks per chip, TFLOP/s, from the vendors' data sheets; the
# first entry whose key is in the device kind applies (specific names first).
PEAK_BF16 = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0),
             ("L40S", 362.0), ("L4", 121.0),
             ("TPU v6 lite", 918.0), ("TPU v6e", 918.0), ("TPU v5 lite", 197.0), ("TPU v5e", 197.0),
             ("TPU v5p", 459.0), ("TPU v5", 459.0), ("TPU v4", 275.0))


def bf16_peak(kind: str):
  """The chip's dense bfloat16 peak in FLOP/s by its device kind, or None if not listed."""
  for key, tflops in PEAK_BF16:
    if key in kind:
      return tflops * 1e12
  return None


def models(quick: bool):
  """(name, config, crop seconds, global batch) of each model timed."""
  flag = config_lib.from_file("sincmodnet", "smoke" if quick else None)
  won, won_name = flagship.won_config(quick)
  if quick:  # the CNN is timed in float32 only (main)
    n = 2 * jax.device_count()
    return [("flagship (configs/sincmodnet.py:smoke)", flag, 1.0, n), (won_name, won, flagship.WON_SECONDS, n)]
  return [("flagship (configs/sincmodnet.py)", flag, flag.data.crop_seconds, FLAGS.flagship_batch),
          (won_name, won, flagship.WON_SECONDS, FLAGS.won_batch)]


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  print(common.header("mirjax.bench.accelerator"))
  kind, n_dev = jax.devices()[0].device_kind, jax.device_count()
  peak = FLAGS.peak_tflops * 1e12 or bf16_peak(kind)
  if peak:
    peak_note = f"the {kind}'s dense bfloat16 peak, {peak / 1e12:.1f} TFLOP/s per chip"
  else:
    peak = common.matmul_peak(512 if FLAGS.quick else 2048)
    peak_note = (f"no bfloat16 peak is listed for {kind!r}: the float32 matmul peak measured here, "
                 f"{peak / 1e12:.4f} TFLOP/s per device")
  print(f"model FLOP utilisation against {peak_note}, x {n_dev} device(s)")
  n_steps = 2 if FLAGS.quick else FLAGS.steps
  fastest = 0.0
  for k, (name, config, seconds, batch) in enumerate(models(FLAGS.quick)):  # the flagship first
    for dtype in FLAGS.dtypes[:1] if FLAGS.quick and k else FLAGS.dtypes:
      config.dtype = dtype
      memory = {}
      run, flops = flagship.mirjax_step(config, flagship.synthetic_batch(batch, seconds), memory)
      step_s = run(n_steps)
      rate = batch / step_s
      if k == 0:
        fastest = max(fastest, rate)
      mfu = flops / step_s / peak  # one device's share of the work against one chip's peak
      print(f"  {name}, {dtype}, batch {batch}: {rate:9.1f} examples/s, {1e3 * step_s:8.1f} ms/step, "
            f"{flops * n_dev / 1e9:.2f} GFLOP/step, MFU {100 * mfu:.1f}%, "
            f"{memory['bytes'] / 2 ** 30:.3f} GiB per device")
  cores = parallel.cores()
  data = config_lib.from_file("sincmodnet", "smoke").data
  sources, info = pipeline.load(data)
  crop = int(round(3.0 * info.sample_rate))
  batch = 2 * n_dev if FLAGS.quick else 64 * n_dev
  rate = flagship.input_rate(sources["train"], batch=batch, crop=crop, threads=cores,
                    n_batches=3 if FLAGS.quick else 30, mesh=sharding.make_mesh(-1))
  print(f"  input pipeline on this host ({cores} read threads, 3 s crops, batch {batch}): {rate:.1f} examples/s "
        f"-> input / the flagship's fastest step = {rate / fastest:.2f}x; a step that fast needs "
        f"{math.ceil(fastest / (rate / cores))} of this host's read threads")


if __name__ == "__main__":
  define_flags()
  app.run(main)
