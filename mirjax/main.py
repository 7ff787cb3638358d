"""mirjax entry point: `python -m mirjax.main --config=configs/X.py[:arg] --workdir=DIR`.

Every config field can be overridden on the command line, e.g.
`--config.train.num_steps=500 --config.data.data_dir=/data/tfds`. A run resumes from the
newest checkpoint in --workdir. Multi-process runs (one process per host or GPU) pass
--num_processes/--process_id/--coordinator_address, or --distributed on a Cloud TPU VM
or SLURM, where JAX finds them itself.
"""
import re
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

JOBS = ("train", "compare", "compare_ssl", "modulation_rates", "eval", "embed", "similarity", "transfer", "explain",
        "kmeans", "recommend", "pretrain", "generate")


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


def parse_flags(argv):
  """absl's flag parsing, with a mistake in --config or its overrides (an unknown field,
  a bad value) reported in one line instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as e:
    _flag_exit(e, argv)


def _flag_exit(e: Exception, argv):
  sys.exit(f"error: {flag_error_line(e, argv)}\nSee --help for the flags; every config field is "
           "--config.SECTION.FIELD=VALUE.")


def flag_error_line(e: Exception, argv=()) -> str:
  """One line of what went wrong in a flag (ml_collections and absl wrap the cause, its
  traceback included, in their messages)."""
  parts, cause = [], e
  while cause is not None:
    parts.append(str(cause.args[0]) if isinstance(cause, KeyError) and cause.args else str(cause))
    cause = cause.__cause__
  text = "\n".join(parts).replace("\\n", "\n").replace("\\'", "'")
  m = re.search(r"mirjax\.errors\.\w+: ([^\n]*)", text)
  if m:  # the config file's own check (an unknown variant)
    return m.group(1)
  m = re.search(r'Did you mean "([\w.]+)" instead of "([\w.]+)"', text)
  if m:
    right, wrong = m.groups()
    given = next((a.split("=")[0] for a in argv if re.match(rf"--config\.(\w+\.)*{wrong}(=|$)", a)),
                 f"--config...{wrong}")
    return f"{given}: the config has no field {wrong!r}; did you mean {right!r}?"
  m = re.search(r"No such file or directory: '([^']+)'", text)
  if m:
    return f"--config: there is no config file {m.group(1)!r} (configs/ lists mirjax's)"
  lines = [l.strip() for l in text.splitlines()]
  lines = [l for l in lines if l and not l.startswith(("Traceback", "File ", "^", "Attempted ["))]
  return lines[-1] if lines else type(e).__name__


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; settings go in --config.FIELD=VALUE")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # library INFO logs (orbax) drown the progress bar
  try:
    config = flags.FLAGS.config
    job = config.job  # the config file is loaded (lazily) at the first field read
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as e:
    _flag_exit(e, sys.argv)
  if job not in JOBS:
    raise app.UsageError(f"config.job={job!r} is not a job mirjax has; choose one of {JOBS}")
  _start_distributed()
  import jax
  from mirjax import sharding, validate
  from mirjax.errors import MirjaxError
  from mirjax.jobs import (compare, embed, evaluate, explain, generate, kmeans, modulation_rates, pretrain, recommend,
                           similarity, train, transfer)
  workdir = flags.FLAGS.workdir
  try:  # settings that cannot work stop here, before any data is loaded or folder made
    validate.check(config, sharding.make_mesh(config.mesh.num_devices) if "mesh" in config else None)
    {"eval": evaluate.check, "embed": embed.check, "similarity": similarity.check,
     "transfer": transfer.check, "kmeans": lambda c, _: kmeans.check(c),
     "recommend": lambda c, _: recommend.check(c), "pretrain": lambda c, _: pretrain.check(c),
     "generate": lambda c, _: generate.check(c)}.get(job, lambda *_: None)(config, workdir)
  except MirjaxError as e:
    sys.exit(f"error: {e}")
  logging.info("mirjax: %d process(es), %d device(s): %s", jax.process_count(), jax.device_count(),
               jax.devices()[0].platform)
  from mirjax import workdir as workdir_lib
  run = {"train": train.train_and_evaluate, "compare": compare.compare,
         "compare_ssl": compare.compare_ssl, "modulation_rates": modulation_rates.analyse,
         "eval": evaluate.evaluate_trained, "embed": embed.embed,
         "similarity": similarity.similarity, "transfer": transfer.transfer,
         "explain": explain.explain, "kmeans": kmeans.run, "recommend": recommend.run,
         "pretrain": pretrain.run, "generate": generate.run}[config.job]
  try:
    with workdir_lib.lock(workdir, primary=jax.process_index() == 0):  # one run per workdir
      run(config, workdir)
  except MirjaxError as e:
    # Bad settings or data (a missing folder, a wrong sample rate, a workdir in use): the
    # message says what to do; --verbosity=0 (or higher) shows where it was raised. Any
    # other exception is a programming error and keeps its traceback.
    if logging.get_verbosity() >= logging.INFO:
      raise
    sys.exit(f"error: {e}")


def run():
  try:
    app.run(main, flags_parser=parse_flags)
  except KeyboardInterrupt:
    sys.exit(130)


if __name__ == "__main__":
  run()
