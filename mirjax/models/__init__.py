"""Model registry: ``default_config(frontend_name)`` and ``build(model_cfg, n_outputs)``."""
import dataclasses

import ml_collections

from mirjax import frontends
from mirjax.models.short_chunk_cnn import ShortChunkCNN
from mirjax.models.tagger import Tagger

BACKENDS = {"short_chunk_cnn": ShortChunkCNN}
MODELS = ("tagger",)


def default_config(frontend_name: str = "sincmodnet") -> ml_collections.ConfigDict:
  """Default (locked) Tagger config around front-end ``frontend_name`` (default the
  flagship "sincmodnet"); see `frontends.default_config` for the front-end fields."""
  cfg = ml_collections.ConfigDict()
  cfg.name = "tagger"  # model kind, one of MODELS
  cfg.frontend = frontends.default_config(frontend_name)  # (batch, time) -> features
  cfg.backend = ml_collections.ConfigDict()
  cfg.backend.name = "short_chunk_cnn"  # back-end kind, one of BACKENDS
  cfg.backend.channels = (32, 32, 64, 64, 128)  # conv block widths; each block pools 2x2
  cfg.backend.dense = 128  # hidden dense width
  cfg.backend.dropout = 0.5  # dropout rate before the output layer
  cfg.backend.bn_momentum = 0.99  # BatchNorm running-average momentum
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


def build(model_cfg, n_outputs: int, branches=("tagging",)):
  """Model from a config with fields ``name`` ("tagger"), ``frontend``, ``backend``.

  Parameters
  ----------
  model_cfg : ConfigDict, e.g. from `default_config`
  n_outputs : int, number of output logits (tags or classes)
  branches : the task's output branches; a "tagger" has exactly one

  Returns
  -------
  Tagger whose ``apply`` gives ``{branches[0]: logits (batch, n_outputs)}``
  """
  if model_cfg.name not in MODELS:
    raise ValueError(f"unknown model {model_cfg.name!r}; valid: {list(MODELS)}")
  unknown = sorted(set(model_cfg.keys()) - {"name", "frontend", "backend"})
  if unknown:
    raise ValueError(f"unknown fields {unknown} for model 'tagger'; valid: "
                     "['backend', 'frontend', 'name']")
  if len(branches) != 1:
    raise ValueError(f"model 'tagger' has one output branch; the task asks for {list(branches)}")
  return Tagger(frontend=frontends.build(model_cfg.frontend),
                backend=_build_backend(model_cfg.backend, n_outputs), branch=branches[0])
