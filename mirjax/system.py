"""What a config makes before any array exists: model, task, optimizer and the state's shapes.

Shared by the jobs that train and by the commands that use a trained model (mirjax.tag).
"""
import copy
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mirjax import models, optim, tasks
from mirjax.state import TrainState
from mirjax.errors import ConfigError


class System(NamedTuple):
  """What a config makes, before any array exists: the parts and the state's shapes."""
  model: Any
  task: Any
  tx: Any
  crop: int  # samples per training crop and evaluation chunk
  make_state: Any  # rng -> fresh TrainState
  abstract_state: Any  # ShapeDtypeStructs of the TrainState


def init_state(rng, *, model, tx, example_audio, graft=None):
  """A fresh TrainState: parameters and batch statistics from `model.init`, with the
  top-level entries of `graft` ({collection: {name: subtree}}, e.g. a pre-trained encoder)
  put in place of the fresh ones."""
  params_rng, dropout_rng, run_rng = jax.random.split(rng, 3)
  variables = dict(model.init({"params": params_rng, "dropout": dropout_rng}, example_audio, train=False))
  for collection, trees in (graft or {}).items():
    variables[collection] = {**variables[collection], **trees}
  params = variables.pop("params")
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                    opt_state=tx.init(params), rng=run_rng)


def check_sample_rate(config, rate: int, dataset: str):
  """Raise ValueError, saying what to set, unless `rate` is the model's sample rate."""
  model_rate = models.sample_rate(config.model)
  if rate != model_rate:
    raise ConfigError(
        f"the dataset {dataset} is at {rate} Hz but the model's front-end expects {model_rate} Hz: "
        f"set --config.data.sample_rate={model_rate} (the audio is resampled when the dataset "
        "is built) or the front-end's sample_rate")


# (epochs field, the steps field it sets) of `resolve_epochs`
EPOCH_FIELDS = (("train", "num_epochs", "num_steps"), ("train", "eval_every_epochs", "eval_every"),
                ("train", "checkpoint_every_epochs", "checkpoint_every"),
                ("optim", "warmup_epochs", "warmup_steps"))


def resolve_epochs(config, n_train: int):
  """A copy of `config` whose step counts given in epochs are steps, for a training split of
  `n_train` examples; `config` itself when no epochs field is set.

  Every `X_epochs > 0` of EPOCH_FIELDS sets its steps field to
  max(1, ceil(X_epochs * n_train / train.batch_size)), optim.sgd_boundary_epochs sets
  optim.sgd_boundaries the same way, and train.examples_per_epoch records `n_train`. The
  run builds its schedule from the copy and saves it with every checkpoint, so a resumed
  run, and a model loaded from the workdir, see the same step counts.
  """
  per_epoch = n_train / config.train.batch_size
  steps = lambda epochs: max(1, math.ceil(round(epochs * per_epoch, 6)))  # round: float noise
  optim = config.optim
  if not any(config[s].get(e, 0) > 0 for s, e, _ in EPOCH_FIELDS) and not optim.get("sgd_boundary_epochs"):
    return config
  c = copy.deepcopy(config)
  for section, epochs, field in EPOCH_FIELDS:
    if c[section].get(epochs, 0) > 0:
      c[section][field] = steps(c[section][epochs])
  if optim.get("sgd_boundary_epochs"):
    c.optim.sgd_boundaries = tuple(steps(e) for e in optim.sgd_boundary_epochs)
  c.train.examples_per_epoch = int(n_train)
  return c


def build_system(config, info) -> System:
  """Model, task and optimizer of `config` for a dataset described by `info`.

  Raises ValueError when the dataset's sample rate is not the one the model expects.
  """
  graft = None
  if config.model.name == "probe" and config.model.pretrained:
    config, graft = _with_pretrained_encoder(config)
  check_sample_rate(config, info.sample_rate, info.name)
  stride = models.encoder_stride(config.model) if config.model.name in ("ssl", "probe") else None
  task = tasks.build(config.task, info, models.branch_names(config.model, config.task.branches),
                     stride=stride)
  model = models.build(config.model, n_outputs=getattr(task, "n_outputs", None),
                       branches=task.branches, dims=getattr(task, "dims", ()))
  frozen = ("encoder",) if config.model.name == "probe" and config.model.freeze else ()
  tx = optim.build(config.optim, task.branches, config.train.num_steps, frozen=frozen)
  crop = int(round(config.data.crop_seconds * info.sample_rate))
  # one compiled program, not op by op; the grafted weights are its argument, not constants
  make_state = functools.partial(jax.jit(functools.partial(
      init_state, model=model, tx=tx, example_audio=jnp.zeros((1, crop)))), graft=graft)
  abstract = jax.eval_shape(make_state, jax.random.PRNGKey(config.seed))
  return System(model, task, tx, crop, make_state, abstract)


def _with_pretrained_encoder(config):
  """(config whose model.encoder is the pre-trained run's, {collection: {"encoder": ...}})."""
  import copy
  import numpy as np
  system, state, _ = load_trained(config.model.pretrained)
  if system.model.__class__.__name__ != "SSLModel":
    raise ConfigError(f"model.pretrained={config.model.pretrained!r} is not a self-supervised "
                     "pre-training run (its model has no encoder with workers)")
  saved = load_config(config.model.pretrained)
  config = copy.deepcopy(config)
  with config.unlocked():
    config.model.encoder = saved.model.encoder
  host = lambda t: jax.tree.map(np.asarray, t)
  graft = {"params": {"encoder": host(state.params["encoder"])}}
  for name, tree in state.model_state.items():
    if "encoder" in tree:
      graft[name] = {"encoder": host(tree["encoder"])}
  return config, graft


def checkpoint_meta(info, task) -> dict:
  """What the checkpoint keeps about the data, so the model can be used without it."""
  return {"dataset": info.name, "sample_rate": int(info.sample_rate), "task": type(task).__name__,
          "tag_names": list(getattr(info, "tag_names", ())),
          "class_names": list(getattr(info, "class_names", ()))}


class TrainedRun(NamedTuple):
  """What a workdir's checkpoint holds, rebuilt: its stored config, the `System` that config
  makes, the restored TrainState, the stored `checkpoint_meta` and the checkpoint's step."""
  config: Any
  system: System
  state: Any
  meta: dict
  step: int


def info_from_meta(meta: dict):
  """What `build_system` needs of a dataset, from a checkpoint's `checkpoint_meta`."""
  import types
  return types.SimpleNamespace(name=meta["dataset"], sample_rate=meta["sample_rate"],
                               tag_names=tuple(meta["tag_names"]),
                               class_names=tuple(meta["class_names"]))


def load_trained_run(workdir: str, step: int | None = None, mesh=None) -> TrainedRun:
  """The run in `workdir` at checkpoint `step` (default: the newest that can be read; one
  deleted while it is read, by a run still training there, gives way to the newest then).
  The state is replicated over `mesh` (default: this process's first device). Reads only:
  a workdir without checkpoints raises WorkdirError and creates nothing."""
  import ml_collections
  from mirjax import checkpoint, sharding
  from mirjax.errors import WorkdirError
  mesh = sharding.make_mesh(1) if mesh is None else mesh
  ckpt = checkpoint.Checkpointer(workdir, read_only=True)

  def read(s):
    config = ml_collections.ConfigDict(ckpt.saved_config(s))
    config.lock()
    meta = ckpt.saved_meta(s)
    system = build_system(config, info_from_meta(meta))
    target = jax.tree.map(lambda _: sharding.replicated(mesh), system.abstract_state)
    state = ckpt.restore_state(s, checkpoint.abstract_with_shardings(system.abstract_state, target))
    return config, system, state, meta

  try:
    found = ckpt.newest_readable(read) if step is None else (step, read(step))
  finally:
    ckpt.close()
  if found is None:
    raise WorkdirError(
        f"no checkpoint in {workdir!r}: train a model there first, e.g. "
        f"python -m mirjax.main --config=configs/sincmodnet.py --workdir={workdir}")
  s, (config, system, state, meta) = found
  return TrainedRun(config, system, state, meta, s)


def load_trained(workdir: str, step: int | None = None, mesh=None):
  """A trained model from a workdir (`load_trained_run`), as (system, state, meta): the
  `System` its stored config makes, its restored TrainState, and the stored
  `checkpoint_meta` (dataset name, tag or class names, rate).

  Raises:
    WorkdirError: the workdir holds no checkpoint (nothing is created).
  """
  run = load_trained_run(workdir, step, mesh)
  return run.system, run.state, run.meta


def load_config(workdir: str):
  """The config of the newest readable checkpoint in `workdir`, as a locked ConfigDict."""
  import ml_collections
  from mirjax import checkpoint
  from mirjax.errors import WorkdirError
  ckpt = checkpoint.Checkpointer(workdir, read_only=True)
  try:
    found = ckpt.newest_readable(ckpt.saved_config)
  finally:
    ckpt.close()
  if found is None:
    raise WorkdirError(f"no checkpoint in {workdir!r}")
  config = ml_collections.ConfigDict(found[1])
  config.lock()
  return config
