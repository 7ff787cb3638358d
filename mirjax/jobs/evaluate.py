"""The evaluation job (`config.job = "eval"`, configs/eval.py): score a trained workdir
without training it.

  python -m mirjax.main --config=configs/eval.py --config.trained=workdirs/x --workdir=workdirs/x_eval

The checkpoint `config.step` ("last", "best" or a step number) of the run in
`config.trained` is scored on `config.splits` by training's own evaluator
(`train.evaluator`), so its numbers are those training reports for its test. The data are
the trained run's (its saved config's `data` section) with every `config.data` field that
is set put in; another dataset must have the model's tags or classes and sample rate.
Each split is read whole (the examples a run held out with data.holdout_fraction are part
of "train" here).

Writes WORKDIR/eval.json: {"metrics": {split: metrics}, "step", "checkpoint", "dataset",
"trained", ...} and prints the scalar metrics; a speaker-verification run also writes each
condition's trial scores as WORKDIR/scores/<condition>.<trial list>.score (Kaldi/wespeaker
format; --config.data.trial_list picks another list of the folder). Nothing is written in the trained workdir.
Also the part that `jobs/embed.py` shares: checking the settings (`check`), loading the
run (`load_run`, the only caller of `checkpoint.load_trained_run` here) and its data (`open_run`).
"""
import copy
import os
from typing import Any, NamedTuple

import jax

from mirjax import checkpoint, metrics, sharding, workdir as workdir_lib
from mirjax.config import REUSED_DATA_FIELDS
from mirjax.data import pipeline
from mirjax.errors import ConfigError, WorkdirError
from mirjax.jobs import train

SPLITS = ("train", "valid", "test")


def splits_of(config) -> tuple:
  """config.splits as a tuple of split names ("valid,test" on the command line is split)."""
  return tuple(s.strip() for entry in config.splits for s in str(entry).split(",") if s.strip())


def step_of(config):
  """config.step as "last", "best" or an int step. Raises ConfigError for anything else."""
  step = str(config.step).strip().lower()
  if step in ("last", "-1", "latest", ""):
    return "last"
  if step == "best":
    return "best"
  if step.isdigit():
    return int(step)
  raise ConfigError(f"config.step={config.step!r}: use 'last' (the newest checkpoint), 'best' (the "
                    "step train.select_by kept) or a step number, e.g. --config.step=1200")


def check(config, workdir: str):
  """Settings of a job that reads a trained run ("eval", "embed") that cannot work, before
  anything is loaded or written: ConfigError for a setting, WorkdirError for a trained
  workdir that is missing or holds no checkpoint."""
  trained = config.trained
  if not trained:
    raise ConfigError(f"config.trained is empty: name the workdir of a trained run, e.g. "
                      f"--config.trained=workdirs/melcnn (config.job={config.job!r})")
  if not os.path.isdir(trained):
    raise WorkdirError(f"config.trained={trained!r} does not exist (or is not a folder): name the "
                       "--workdir of a training run")
  if not os.path.isdir(os.path.join(trained, "checkpoints")):
    raise WorkdirError(f"config.trained={trained!r} holds no checkpoint (no checkpoints/ folder): "
                       "name the --workdir of a training run")
  step = step_of(config)
  if step == "best" and not os.path.isdir(os.path.join(trained, "best")):
    raise ConfigError(f"config.step='best': the run in {trained!r} kept no best step (it trained "
                      "with train.select_by=''): use --config.step=last or a step number")
  splits = splits_of(config)
  unknown = [s for s in splits if s not in SPLITS]
  if not splits or unknown or len(set(splits)) < len(splits):
    raise ConfigError(f"config.splits={tuple(config.splits)!r}: name each of {SPLITS} at most once, "
                      "e.g. --config.splits=valid,test")
  here, there = os.path.realpath(workdir), os.path.realpath(trained)
  if here == there or here.startswith(there + os.sep):
    raise ConfigError(f"--workdir={workdir} is inside the trained workdir {trained!r}, which this job "
                      f"only reads: choose another --workdir, e.g. {trained.rstrip('/')}_{config.job}")


def load_run(trained: str, step, mesh) -> checkpoint.TrainedRun:
  """The run in `trained` at `step` ("last", "best" or an int), its state replicated over
  `mesh`. Reads only. Raises WorkdirError for a step that is not on disk."""
  if step == "last":
    return checkpoint.load_trained_run(trained, mesh=mesh)
  best = _best_step(trained)
  if step == "best" or (step == best and step not in _steps(trained)):
    if best is None:
      raise WorkdirError(f"{trained!r} holds no best step (WORKDIR/best is empty)")
    return checkpoint.load_trained_run(trained, best, mesh=mesh, folder="best")
  if step not in _steps(trained):
    kept = f"; the best step {best} is in best/" if best is not None else ""
    raise WorkdirError(f"config.step={step}: {trained!r} holds no checkpoint of step {step}; it holds "
                       f"steps {sorted(_steps(trained))}{kept}")
  return checkpoint.load_trained_run(trained, step, mesh=mesh)


def _steps(trained: str) -> list:
  ckpt = checkpoint.Checkpointer(trained, read_only=True)
  try:
    return ckpt.steps()
  finally:
    ckpt.close()


def _best_step(trained: str):
  if not os.path.isdir(os.path.join(trained, "best")):
    return None
  ckpt = checkpoint.Checkpointer(trained, folder="best", read_only=True)
  try:
    return ckpt.latest_step()
  finally:
    ckpt.close()


def job_config(saved, config):
  """A copy of the trained run's config `saved` with every `config.data` and `config.eval`
  field that is set (not None) in place of the run's own."""
  c = copy.deepcopy(saved)
  with c.unlocked():
    for section, fields in (("data", REUSED_DATA_FIELDS), ("eval", ("batch_size", "n_chunks"))):
      for field in fields:
        if config[section].get(field) is not None:
          c[section][field] = config[section][field]
  return c


class OpenRun(NamedTuple):
  """A trained run ready to be scored: the run, the config it is scored with
  (`job_config`), the sources of the splits asked for, and the dataset's Info."""
  run: Any
  config: Any
  sources: dict
  info: Any


def open_run(config, mesh) -> OpenRun:
  """Loads the trained run, then its data (the run's or the one `config.data` names),
  checking that the data can be scored by the model."""
  run = load_run(config.trained, step_of(config), mesh)
  cfg = job_config(run.config, config)
  sharding.local_batch_size(cfg.eval.batch_size, mesh, name="eval.batch_size")
  sources, info = pipeline.load(cfg.data)
  check_data(run.meta, info.to_meta(run.system.task), config.trained)
  missing = [s for s in splits_of(config) if s not in sources]
  if missing:
    raise ConfigError(f"the dataset {info.name} has no {' or '.join(map(repr, missing))} split (it has "
                      f"{sorted(sources)}): set --config.splits to those it has")
  return OpenRun(run, cfg, {s: sources[s] for s in splits_of(config)}, info)


def check_data(saved_meta: dict, meta: dict, trained: str):
  """ConfigError saying what differs unless a dataset (`meta`, `Info.to_meta`) has the
  sample rate and the tag or class names of the model's (`saved_meta`); its name may differ."""
  keys = ("sample_rate", "tag_names", "class_names")
  lines = checkpoint.meta_differences({k: saved_meta[k] for k in keys if k in saved_meta}, meta)
  if lines:
    raise ConfigError(
        f"the dataset {meta['dataset']} does not fit the model in {trained!r} (trained on "
        f"{saved_meta.get('dataset')}):\n" + "\n".join(lines).replace("this run has", "the dataset has")
        + "\nScore it on data with the model's tags (or classes) and sample rate.")


def evaluate_trained(config, workdir: str) -> dict:
  """Scores `config.trained` on `config.splits` and writes WORKDIR/eval.json, holding
  WORKDIR locked; returns what it writes."""
  check(config, workdir)  # before anything is read or written
  with workdir_lib.lock(workdir, primary=jax.process_index() == 0):
    mesh = sharding.make_mesh(config.mesh.num_devices)
    opened = open_run(config, mesh)
    run, cfg = opened.run, opened.config
    # a verification run also writes each condition's trial scores to WORKDIR/scores/
    run_eval = train.evaluator(cfg, run.system, mesh, score_dir=os.path.join(workdir, "scores"))
    scores = {s: run_eval(run.state, source) for s, source in opened.sources.items()}
    out = {"metrics": scores, "step": int(run.step), "checkpoint": str(step_of(config)),
           "dataset": opened.info.name, "trained_on": run.meta.get("dataset"),
           "trained": os.path.abspath(config.trained),
           "num_examples": {s: len(source) for s, source in opened.sources.items()},
           "eval": {"n_chunks": int(cfg.eval.n_chunks), "batch_size": int(cfg.eval.batch_size)}}
    metrics.write_json(os.path.join(workdir, "eval.json"), out)
    if jax.process_index() == 0:
      print(summary(out))
    return out


def summary(out: dict) -> str:
  """A few lines: what was scored, then its scalar metrics by split."""
  flat = {f"{s}/{k}": v for s, m in out["metrics"].items() for k, v in m.items()}
  head = (f"{out['trained']} at step {out['step']} ({out['checkpoint']}) on {out['dataset']}, "
          + ", ".join(f"{s}: {n} examples" for s, n in out["num_examples"].items()))
  return head + "\n" + metrics.format_table(flat)
