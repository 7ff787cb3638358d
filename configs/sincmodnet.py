"""SincModNet music tagging: learnable sinc filter bank -> band envelopes -> learnable
temporal modulation filter bank ("A Modulation Front-End for Music Audio
Tagging", arXiv:2105.11836) -> short-chunk CNN.

  python -m mirjax.main --config=configs/sincmodnet.py --workdir=workdirs/sincmodnet
  python -m mirjax.main --config=configs/sincmodnet.py:smoke --workdir=/tmp/smoke
"""
from mirjax import config as base


def get_config(arg=None):
  return base.tagging("sincmodnet", arg)
