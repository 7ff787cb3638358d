"""Log-mel + short-chunk CNN music tagging (Won et al., 2020): the fixed front-end baseline.

  python -m mirjax.main --config=configs/melcnn.py --workdir=workdirs/melcnn
  python -m mirjax.main --config=configs/melcnn.py:smoke --workdir=/tmp/smoke
  python -m mirjax.main --config=configs/melcnn.py:mtat --config.data.manual_dir=/data/magnatagatune --workdir=workdirs/melcnn_mtat
":mtat" is Won et al.'s protocol at their published size (7 blocks of 128-512 channels,
dense 512, 128 mel bands; mirjax/config.py won2020); ":mtat_small" the same protocol with
the CPU-sized back-end.
"""
from mirjax import config as base


def get_config(arg=None):
  return base.tagging("logmel", arg)
