"""Tasks: `build(cfg, info)` -> an object with `branches`, `losses(outputs, batch)`
(device, per-branch scalars), `predict(outputs)` (device) and `evaluate(labels, scores)`
(host metrics)."""
from mirjax.tasks.tagging import Tagging


def build(cfg, info):
  if cfg.name == "tagging":
    return Tagging(info.tag_names, branches=tuple(cfg.branches))
  raise ValueError(f"unknown task.name {cfg.name!r}; mirjax has 'tagging'")
