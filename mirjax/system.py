"""What a config makes before any array exists: model, task, optimizer and the state's shapes.

Pure building, shared by the jobs that train and by the commands that use a trained model;
reading a trained run from its workdir is mirjax.checkpoint's (`load_trained_run`).
"""
import copy
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mirjax import models, optim, precision, tasks
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
  dtype: Any = None  # the steps compute in it (config.dtype; mirjax/precision.py); None: float32


def init_state(rng, *, model, tx, example_inputs, graft=None, param_dtype=None):
  """A fresh TrainState: parameters and batch statistics from `model.init`, with the
  top-level entries of `graft` ({collection: {name: subtree}}, e.g. a pre-trained encoder)
  put in place of the fresh ones; the parameters (and so the optimizer state) in
  `param_dtype` when given."""
  params_rng, dropout_rng, run_rng = jax.random.split(rng, 3)
  variables = dict(model.init({"params": params_rng, "dropout": dropout_rng}, example_inputs, train=False))
  for collection, trees in (graft or {}).items():
    variables[collection] = {**variables[collection], **trees}
  params = variables.pop("params")
  if param_dtype is not None:
    params = precision.cast_floating(params, param_dtype)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                    opt_state=tx.init(params), rng=run_rng)


def check_sample_rate(config, rate: int, dataset: str):
  """Raise ConfigError, saying what to set, unless `rate` is the model's sample rate."""
  model_rate = models.sample_rate(config.model)
  if model_rate and rate != model_rate:  # 0: the model reads no audio
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


def resolve_inputs(config, info):
  """A copy of `config` whose "mlp" model has the input width of the feature dataset `info`
  (model.input_dim 0: take the dataset's), whose "lstm" conditioned on style has the
  dataset's style count, or whose conditioned "wavenet" has data.hop; `config` itself for
  other models. Raises ConfigError when a set
  width is not the dataset's, or the dataset holds no features (no tokens, for an "lstm")."""
  if config.model.name == "lstm":
    if not info.vocab_size:
      raise ConfigError(f"model 'lstm' reads event tokens, which the dataset {info.name} lacks: "
                        "train it on --config.data.name=notes (or midi)")
    if not config.model.condition_on_style:
      return config
    c = copy.deepcopy(config)
    c.model.styles = max(1, len(info.class_names))
    return c
  if config.model.name == "wavenet":
    if not config.model.condition:
      return config
    if config.model.hop not in (0, config.data.hop):
      raise ConfigError(f"model.hop={config.model.hop} but data.hop={config.data.hop}: set one")
    c = copy.deepcopy(config)
    c.model.hop = int(config.data.hop)
    return c
  if config.model.name != "mlp":
    return config
  if not info.feature_dim:
    raise ConfigError(f"model 'mlp' reads summary features, which the dataset {info.name} lacks: "
                      "train it on a feature dataset (--config.data.name=features)")
  if config.model.input_dim not in (0, info.feature_dim):
    raise ConfigError(f"model.input_dim={config.model.input_dim} but the features of {info.name} "
                      f"have {info.feature_dim} dimensions: set --config.model.input_dim=0")
  c = copy.deepcopy(config)
  c.model.input_dim = int(info.feature_dim)
  return c


def build_system(config, info, graft=None) -> System:
  """Model, task and optimizer of `config` for a dataset described by `info` (a
  mirjax.data.info.Info). Pure: it reads no file. `graft` ({collection: {name: subtree}},
  e.g. a pre-trained encoder from checkpoint.pretrained_encoder) replaces those parts of a
  fresh state.

  Raises ConfigError when the dataset's sample rate is not the one the model expects.
  """
  check_sample_rate(config, info.sample_rate, info.name)
  stride = models.encoder_stride(config.model) if config.model.name in ("ssl", "probe") else None
  task = tasks.build(config.task, info, models.branch_names(config.model, config.task.branches),
                     stride=stride, loss=config.model.get("loss"))
  model = models.build(config.model, n_outputs=getattr(task, "n_outputs", None),
                       branches=task.branches, dims=getattr(task, "dims", ()))
  frozen = ("encoder",) if config.model.name == "probe" and config.model.freeze else ()
  tx = optim.build(config.optim, task.branches, config.train.num_steps, frozen=frozen)
  crop = int(round(config.data.crop_seconds * info.sample_rate))
  # one compiled program, not op by op; the grafted weights are its argument, not constants
  dtype, param_dtype = precision.dtypes(config)
  make_state = functools.partial(jax.jit(functools.partial(
      init_state, model=model, tx=tx, example_inputs=models.example_inputs(config.model, crop),
      param_dtype=param_dtype)), graft=graft)
  abstract = jax.eval_shape(make_state, jax.random.PRNGKey(config.seed))
  return System(model, task, tx, crop, make_state, abstract, dtype)
