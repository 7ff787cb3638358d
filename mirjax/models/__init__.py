"""Model registry: ``default_config(frontend_name)``, ``multiview_config(views)`` and
``build(model_cfg, n_outputs, branches)``."""
import dataclasses

import ml_collections

from mirjax import frontends
from mirjax.models.multiview import JOINT, MultiView
from mirjax.models.short_chunk_cnn import ShortChunkCNN
from mirjax.models.tagger import Tagger

BACKENDS = {"short_chunk_cnn": ShortChunkCNN}
MODELS = ("tagger", "multiview")
VIEWS = ("logmel", "gammatone", "cqt", "rawconv", "mfcc", "chroma")  # front-ends a view can be


def default_config(frontend_name: str = "sincmodnet") -> ml_collections.ConfigDict:
  """Default (locked) Tagger config around front-end ``frontend_name`` (default the
  flagship "sincmodnet"); see `frontends.default_config` for the front-end fields."""
  cfg = ml_collections.ConfigDict()
  cfg.name = "tagger"  # model kind, one of MODELS
  cfg.frontend = frontends.default_config(frontend_name)  # (batch, time) -> features
  cfg.backend = _backend_config()
  cfg.lock()
  return cfg


def _backend_config(channels=(32, 32, 64, 64, 128), dense=128) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.name = "short_chunk_cnn"  # back-end kind, one of BACKENDS
  cfg.channels = channels  # conv block widths; each block pools 2x2
  cfg.dense = dense  # hidden dense width (the embedding of a multi-view sub-network)
  cfg.dropout = 0.5  # dropout rate before the output layer
  cfg.bn_momentum = 0.99  # BatchNorm running-average momentum
  return cfg


def multiview_config(views=("logmel", "gammatone", "cqt", "rawconv")) -> ml_collections.ConfigDict:
  """Default (locked) MultiView config: `views` each through its own sub-network.

  Every view of `VIEWS` has a front-end config under ``frontends`` (so ``--config.model.views``
  can pick any of them); each sub-network is a short-chunk CNN encoder sized by ``backend``.
  """
  cfg = ml_collections.ConfigDict()
  cfg.name = "multiview"  # model kind, one of MODELS
  cfg.views = tuple(views)  # the views used, names from VIEWS
  cfg.frontends = ml_collections.ConfigDict(
      {v: frontends.default_config(v) for v in VIEWS if v in frontends.FRONTENDS})
  cfg.backend = _backend_config(channels=(16, 16, 32, 32, 64), dense=64)  # per view
  cfg.dropout = 0.5  # dropout on each head's input
  cfg.lock()
  return cfg


def _build_backend(cfg, n_outputs):
  """Back-end module from its config plus the number of outputs."""
  fields = dict(cfg)
  name = fields.pop("name", None)
  if name not in BACKENDS:
    raise ValueError(f"unknown back-end {name!r}; valid: {sorted(BACKENDS)}")
  cls = BACKENDS[name]
  valid = {f.name for f in dataclasses.fields(cls)
           if f.init and f.name not in ("parent", "name", "n_outputs")}
  unknown = sorted(set(fields) - valid)
  if unknown:
    raise ValueError(f"unknown fields {unknown} for back-end {name!r}; valid: {sorted(valid)}")
  if "channels" in fields:
    fields["channels"] = tuple(fields["channels"])
  return cls(n_outputs=n_outputs, **fields)


def sample_rate(model_cfg) -> int:
  """The audio rate in Hz a model's front-ends expect (every view of a multi-view model)."""
  if model_cfg.name == "multiview":
    rates = {model_cfg.frontends[v].sample_rate for v in model_cfg.views}
    if len(rates) != 1:
      raise ValueError(f"the views' front-ends disagree on sample_rate: {sorted(rates)}")
    return rates.pop()
  return model_cfg.frontend.sample_rate


def branch_names(model_cfg, branches) -> tuple:
  """The task's branches with the word "views" replaced by the model's views, in order
  (so a multi-view config keeps its heads right whatever --config.model.views says)."""
  views = tuple(model_cfg.views) if model_cfg.name == "multiview" else ()
  out = []
  for b in branches:
    out += list(views) if b == "views" else [b]
  return tuple(out)


def build(model_cfg, n_outputs: int, branches=("tagging",)):
  """Model from a config with fields ``name`` and the fields of that kind.

  Parameters
  ----------
  model_cfg : ConfigDict, from `default_config` ("tagger": ``frontend``, ``backend``) or
    `multiview_config` ("multiview": ``views``, ``frontends``, ``backend``, ``dropout``)
  n_outputs : int, number of output logits (tags or classes) of each branch
  branches : the task's output branches; a "tagger" has exactly one, a "multiview" model
    any of "joint" and its views

  Returns
  -------
  a linen Module whose ``apply`` gives ``{branch: logits (batch, n_outputs)}``
  """
  if model_cfg.name not in MODELS:
    raise ValueError(f"unknown model {model_cfg.name!r}; valid: {list(MODELS)}")
  if model_cfg.name == "multiview":
    views = tuple(model_cfg.views)
    unknown = sorted(set(views) - set(model_cfg.frontends))
    if unknown or not views:
      raise ValueError(f"model.views {list(views)}: each must be one of {sorted(model_cfg.frontends)}")
    return MultiView(views=views, frontends=[frontends.build(model_cfg.frontends[v]) for v in views],
                     encoders=[_build_backend(model_cfg.backend, None) for _ in views],
                     branches=tuple(branches), n_outputs=n_outputs, dropout=model_cfg.dropout)
  unknown = sorted(set(model_cfg.keys()) - {"name", "frontend", "backend"})
  if unknown:
    raise ValueError(f"unknown fields {unknown} for model 'tagger'; valid: "
                     "['backend', 'frontend', 'name']")
  if len(branches) != 1:
    raise ValueError(f"model 'tagger' has one output branch; the task asks for {list(branches)}")
  return Tagger(frontend=frontends.build(model_cfg.frontend),
                backend=_build_backend(model_cfg.backend, n_outputs), branch=branches[0])
