"""The input pipeline against the train step: `python -m mirjax.bench.pipeline [--quick]`.

Examples/s of configs/sincmodnet.py's training input, from the built dataset cache through
grain (shuffle, random 3 s crop, batch) to device-ready global arrays sharded over every
device (`sharding.to_global`), at each number of read threads in `--threads` and at each
number of grain worker processes in `--workers` (config.data.worker_processes; each reads
with one thread, and their start is not timed); and the
examples/s of the flagship's train step on this machine at the same batch
(`mirjax.bench.train`), so the ratio says whether the input keeps up. From the best
per-thread rate it prints how many host threads a step of a given rate needs
(`--target_examples_per_s`: e.g. an accelerator's figure from `mirjax.bench.accelerator`).

It reads the embedded default data (`--quick`: the smoke data), built on first use in
$MIRJAX_DATA_DIR (or ~/.cache/mirjax/tfds). On a CPU, input and step share the cores, so the
two rates are each measured alone.
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
  flags.DEFINE_list("threads", [], "Read threads to time (default: 1, 2, 4, ... up to the cores).")
  flags.DEFINE_list("workers", [], "Worker processes to time, one read thread each (default: as --threads; "
                    "'0' times none).")
  flags.DEFINE_integer("batch", 16, "Global batch (a multiple of the device count).")
  flags.DEFINE_integer("batches", 50, "Timed batches per setting (after 3 warm-up batches, one more per worker process).")
  flags.DEFINE_float("target_examples_per_s", 0.0, "A train step's rate to size the host for (0: this machine's).")
  flags.DEFINE_bool("quick", False, "The smoke data and few batches: checks that everything runs, in seconds.")


FLAGS = flags.FLAGS


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  config = config_lib.from_file("sincmodnet", "smoke" if FLAGS.quick else None)
  mesh = sharding.make_mesh(-1)
  batch = 2 * jax.device_count() if FLAGS.quick else FLAGS.batch
  n_batches = 4 if FLAGS.quick else FLAGS.batches
  cores = parallel.cores()
  counts = sorted({*(2 ** k for k in range(8) if 2 ** k < cores), cores})
  threads = [int(t) for t in FLAGS.threads] or counts
  workers = [w for w in map(int, FLAGS.workers) if w > 0] if FLAGS.workers else counts
  print(common.header("mirjax.bench.pipeline"))
  sources, info = pipeline.load(config.data)
  crop = int(round(config.data.crop_seconds * info.sample_rate))
  print(f"training input of configs/sincmodnet.py from the built cache ({info.name}, "
        f"{len(sources['train'])} training clips): shuffle, {crop}-sample crop, batch {batch}, "
        f"to {jax.device_count()} device(s); {n_batches} batches per setting, {cores} core(s)")
  rates = {}
  for t in threads:
    rates[t] = flagship.input_rate(sources["train"], batch=batch, crop=crop, threads=t, n_batches=n_batches, mesh=mesh)
    print(f"  {t:3d} read thread(s): {rates[t]:9.1f} examples/s  ({rates[t] / t:.1f} per thread)")
  by_workers = worker_rates(sources["train"], workers, batch=batch, crop=crop, n_batches=n_batches, mesh=mesh)
  run, _ = flagship.mirjax_step(config, flagship.synthetic_batch(batch, crop / info.sample_rate))
  step_s = run(2 if FLAGS.quick else 10)
  step_rate = batch / step_s
  best = max(rates, key=rates.get)
  print(f"  the flagship's train step here: {step_rate:9.1f} examples/s -> input / step = "
        f"{rates[best] / step_rate:.2f}x at {best} thread(s)")
  target = FLAGS.target_examples_per_s or step_rate
  per_thread = max(rates[t] / t for t in rates)
  print(f"  a step of {target:.1f} examples/s needs {math.ceil(target / per_thread)} read thread(s) "
        f"at the best rate per thread ({per_thread:.1f} examples/s)")
  if by_workers:
    most = max(by_workers, key=by_workers.get)
    print(f"  worker processes against threads: {by_workers[most]:.1f} examples/s at {most} worker(s), "
          f"{rates[best]:.1f} at {best} thread(s) -> {by_workers[most] / rates[best]:.2f}x")


def worker_rates(source, workers, **kw) -> dict:
  """{n: examples/s} of the training input read by n worker processes of one read thread
  each, for each n of `workers`, printed as measured."""
  rates = {}
  for w in workers:
    rates[w] = flagship.input_rate(source, threads=1, workers=w, **kw)
    print(f"  {w:3d} worker process(es), 1 read thread each: {rates[w]:9.1f} examples/s  "
          f"({rates[w] / w:.1f} per process)")
  return rates


if __name__ == "__main__":
  define_flags()
  app.run(main)
