"""Checks of a config that need no data: run once, before anything is loaded or written,
so a setting that cannot work stops the run at once with one line naming it."""
from mirjax.errors import ConfigError

POSITIVE_INTS = ("train.log_every", "train.eval_every", "train.checkpoint_every",
                 "train.keep_checkpoints", "eval.n_chunks")


def _get(config, path):
  node = config
  for key in path.split("."):
    if key not in node:
      return None
    node = node[key]
  return node


def check(config, mesh=None):
  """Raises ConfigError for the first setting of `config` that cannot work; with `mesh`,
  also for batch sizes it cannot split."""
  from mirjax.config import unset_fields
  missing = unset_fields(config)
  if missing:
    raise ConfigError(f"the config leaves {', '.join(f'config.{m}' for m in missing)} unset: a config "
                      "file states its experiment's learning rate, steps, batch and crop (set them "
                      "in it, or with --config.FIELD=VALUE)")
  for path in POSITIVE_INTS:
    value = _get(config, path)
    if value is not None and (not isinstance(value, int) or value < 1):
      raise ConfigError(f"config.{path}={value!r} must be a whole number >= 1 (steps or a count): "
                        f"set --config.{path}")
  steps, epochs = _get(config, "train.num_steps"), _get(config, "train.num_epochs")
  if steps is not None and steps < 1 and not (epochs and epochs > 0):
    raise ConfigError(f"config.train.num_steps={steps!r}: a run needs >= 1 step (or "
                      "--config.train.num_epochs > 0)")
  if epochs is not None and epochs < 0:
    raise ConfigError(f"config.train.num_epochs={epochs!r} must be >= 0 (0: use train.num_steps)")
  crop = _get(config, "data.crop_seconds")
  if crop is not None and not crop > 0:
    raise ConfigError(f"config.data.crop_seconds={crop!r}: training crops and evaluation chunks "
                      "need a positive length in seconds, e.g. --config.data.crop_seconds=3.0")
  name = _get(config, "data.name")
  if name is not None:
    from mirjax.data.pipeline import DATASETS
    if name not in DATASETS:
      raise ConfigError(f"config.data.name={name!r} is not a dataset mirjax has; choose one of "
                        f"{sorted(DATASETS)}")
    if DATASETS[name].manual_dir is not None and not _get(config, "data.manual_dir"):
      raise ConfigError(f"config.data.name={name!r} reads a local folder: pass "
                        f"--config.data.manual_dir=DIR with {DATASETS[name].manual_dir}")
  workers = _get(config, "data.worker_processes")
  if workers is not None and (not isinstance(workers, int) or workers < 0):
    raise ConfigError(f"config.data.worker_processes={workers!r} must be a whole number >= 0 (0: read "
                      "training examples in this process)")
  holdout = _get(config, "data.holdout_fraction")
  if holdout is not None and not 0 <= holdout < 1:
    raise ConfigError(f"config.data.holdout_fraction={holdout!r} must be in [0, 1)")
  if mesh is not None:
    from mirjax import sharding
    for path in ("train.batch_size", "eval.batch_size"):
      if _get(config, path) is not None:
        sharding.local_batch_size(_get(config, path), mesh, name=path)
