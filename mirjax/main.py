"""mirjax entry point: `python -m mirjax.main --config=configs/X.py[:arg] --workdir=DIR`.

Every config field can be overridden on the command line, e.g.
`--config.train.num_steps=500 --config.data.data_dir=/data/tfds`. A run resumes from the
newest checkpoint in --workdir. Multi-process runs (one process per host or GPU) pass
--num_processes/--process_id/--coordinator_address, or --distributed on a Cloud TPU VM
or SLURM, where JAX finds them itself.
"""
import sys

from absl import app, flags, logging
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/sincmodnet.py or configs/sincmodnet.py:smoke.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results; a run resumes from it.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() with the cluster's own settings (TPU pod, SLURM).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for a multi-process run started by hand.")
flags.DEFINE_integer("num_processes", 1, "Number of processes of a multi-process run started by hand.")
flags.DEFINE_integer("process_id", 0, "This process's index in [0, num_processes).")
flags.mark_flags_as_required(["config", "workdir"])

JOBS = ("train", "compare", "compare_ssl", "modulation_rates")


def _start_distributed():
  import jax
  FLAGS = flags.FLAGS
  if FLAGS.num_processes > 1:
    if not FLAGS.coordinator_address:
      raise app.UsageError("--num_processes > 1 needs --coordinator_address=HOST:PORT of process 0")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU-only setting
    jax.distributed.initialize(FLAGS.coordinator_address, num_processes=FLAGS.num_processes,
                               process_id=FLAGS.process_id)
  elif FLAGS.distributed:
    jax.distributed.initialize()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; settings go in --config.FIELD=VALUE")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # library INFO logs (orbax) drown the progress bar
  config = flags.FLAGS.config
  if config.job not in JOBS:
    raise app.UsageError(f"config.job={config.job!r} is not a job mirjax has; choose one of {JOBS}")
  _start_distributed()
  import jax
  logging.info("mirjax: %d process(es), %d device(s): %s", jax.process_count(), jax.device_count(),
               jax.devices()[0].platform)
  from mirjax import workdir as workdir_lib
  from mirjax.errors import MirjaxError
  from mirjax.jobs import compare, modulation_rates, train
  run = {"train": train.train_and_evaluate, "compare": compare.compare,
         "compare_ssl": compare.compare_ssl, "modulation_rates": modulation_rates.analyse}[config.job]
  workdir = flags.FLAGS.workdir
  try:
    with workdir_lib.lock(workdir, primary=jax.process_index() == 0):  # one run per workdir
      run(config, workdir)
  except (MirjaxError, ValueError) as e:
    # Bad settings or data (a missing folder, a wrong sample rate, an indivisible batch):
    # the message says what to do; --verbosity=0 (or higher) shows where it was raised.
    if logging.get_verbosity() >= logging.INFO:
      raise
    sys.exit(f"error: {e}")


def run():
  try:
    app.run(main)
  except KeyboardInterrupt:
    sys.exit(130)


if __name__ == "__main__":
  run()
