"""Raw-audio strided convolution + short-chunk CNN music tagging (the end-to-end front-end
of Dieleman & Schrauwen, ICASSP 2014).

  python -m mirjax.main --config=configs/rawcnn.py --workdir=workdirs/rawcnn
  python -m mirjax.main --config=configs/rawcnn.py:smoke --workdir=/tmp/smoke
"""
from mirjax import config as base


def get_config(arg=None):
  return base.tagging("rawconv", arg)
