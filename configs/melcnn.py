"""Log-mel + short-chunk CNN music tagging (Won et al., 2020): the fixed front-end baseline.

  python -m mirjax.main --config=configs/melcnn.py --workdir=workdirs/melcnn
  python -m mirjax.main --config=configs/melcnn.py:smoke --workdir=/tmp/smoke
"""
from mirjax import config as base


def get_config(arg=None):
  return base.tagging("logmel", arg)
