"""Tasks: `build(cfg, info)` -> an object with `branches`, `target` (the example field of
the ground truth), `n_outputs`, `losses(outputs, batch, step=None)` (device, per-branch
scalars; `step` is the training step, None outside training), `predict(outputs)` (device)
and `evaluate(labels, scores)` (host metrics). A task with `verifies` scores trials instead
of labels (`Verification.score`, `evaluate_scores`)."""
from mirjax.tasks.classification import Classification
from mirjax.tasks.language_model import LanguageModel, Waveform
from mirjax.tasks.reconstruction import WORKERS, Reconstruction
from mirjax.tasks.regression import Regression
from mirjax.tasks.tagging import Tagging
from mirjax.tasks.verification import Verification
from mirjax.errors import ConfigError

TASKS = ("tagging", "classification", "regression", "reconstruction", "verification", "language_model",
         "waveform")


def build(cfg, info, branches=None, stride=None, loss=None):
  """The task named by cfg.name, over the dataset described by `info`, with output
  `branches` (default cfg.branches); "reconstruction" also needs the encoder's `stride`,
  "verification" the model's margin `loss` section."""
  branches = tuple(cfg.branches if branches is None else branches)
  if cfg.name == "verification":
    if loss is None:
      raise ConfigError("task.name='verification' trains a speaker model (model.name='avspeaker')")
    return Verification(info.class_names, branches, loss, cross_modal=cfg.cross_modal,
                        score_norm=cfg.score_norm, top_n=cfg.top_n, p_target=cfg.p_target,
                        eer_rule=cfg.eer_rule, primary=cfg.primary)
  if cfg.name == "reconstruction":
    return Reconstruction(branches, info.sample_rate, stride)
  if cfg.name == "language_model":
    if not getattr(info, "vocab_size", 0):
      raise ConfigError("task.name='language_model' needs a token dataset: --config.data.name=notes (or midi)")
    return LanguageModel(info.vocab_size, branches)
  if cfg.name == "waveform":
    return Waveform(256, branches, output=cfg.output, mixtures=cfg.mixtures)
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
  if cfg.name == "regression":
    if not getattr(info, "target_dim", 0):
      raise ConfigError("task.name='regression' needs a dataset with real-valued targets "
                        "('factors', e.g. the song-factor folder a recommend run writes)")
    return Regression(info.target_dim, branches=branches, predict_from=tuple(cfg.get("predict_from", ())),
                      loss=cfg.get("loss", "mse"))
  raise ConfigError(f"unknown task.name {cfg.name!r}; mirjax has {list(TASKS)}")
