"""python -m mirjax.main --config=configs/eval.py --config.trained=workdirs/melcnn --workdir=workdirs/melcnn_eval

Score a trained workdir without training it (mirjax/jobs/evaluate.py).

  python -m mirjax.main --config=configs/eval.py --config.trained=workdirs/melcnn --config.step=best --config.splits=valid,test --workdir=workdirs/melcnn_eval
  python -m mirjax.main --config=configs/eval.py --config.trained=workdirs/melcnn --config.data.name=folder --config.data.manual_dir=/data/my_songs --workdir=workdirs/melcnn_on_my_songs

Writes WORKDIR/eval.json: the metrics of each split (the numbers training reports for
its test), the step scored, the dataset and the trained workdir. --config.step is "last"
(the newest checkpoint), "best" (the step train.select_by kept) or a step number. The
data are the trained run's own unless a --config.data field is set; another dataset must
have the model's tags (or classes) and sample rate. Nothing is written in the trained
workdir.
"""
from mirjax import config as base
from mirjax.errors import ConfigError


def get_config(arg=None):
  if arg:
    raise ConfigError(f"configs/eval.py takes no variant (got {arg!r}); set --config.FIELD=VALUE")
  return base.trained_run_job("eval")
