"""Tasks: `build(cfg, info)` -> an object with `branches`, `target` (the example field of
the ground truth), `n_outputs`, `losses(outputs, batch)` (device, per-branch scalars),
`predict(outputs)` (device) and `evaluate(labels, scores)` (host metrics)."""
from mirjax.tasks.classification import Classification
from mirjax.tasks.reconstruction import WORKERS, Reconstruction
from mirjax.tasks.tagging import Tagging
from mirjax.errors import ConfigError

TASKS = ("tagging", "classification", "reconstruction")


def build(cfg, info, branches=None, stride=None):
  """The task named by cfg.name, over the dataset described by `info`, with output
  `branches` (default cfg.branches); "reconstruction" also needs the encoder's `stride`."""
  branches = tuple(cfg.branches if branches is None else branches)
  if cfg.name == "reconstruction":
    return Reconstruction(branches, info.sample_rate, stride)
  if cfg.name == "tagging":
    if not getattr(info, "tag_names", ()):
      raise ConfigError("task.name='tagging' needs a multi-label dataset (tags); this one has "
                       "classes: use --config.task.name=classification")
    return Tagging(info.tag_names, branches=branches,
                   predict_from=tuple(cfg.get("predict_from", ())))
  if cfg.name == "classification":
    if not getattr(info, "class_names", ()):
      raise ConfigError("task.name='classification' needs a single-label dataset (classes); "
                       "this one has tags: use --config.task.name=tagging")
    return Classification(info.class_names, branches=branches,
                          predict_from=tuple(cfg.get("predict_from", ())))
  raise ConfigError(f"unknown task.name {cfg.name!r}; mirjax has {list(TASKS)}")
