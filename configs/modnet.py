"""ModNet music tagging: fixed mel-spaced band envelopes -> learnable temporal modulation
filter bank ("A Modulation Front-End for Music Audio
Tagging", arXiv:2105.11836) -> short-chunk CNN.

  python -m mirjax.main --config=configs/modnet.py --workdir=workdirs/modnet
  python -m mirjax.main --config=configs/modnet.py:smoke --workdir=/tmp/smoke
"""
from mirjax import config as base


def get_config(arg=None):
  return base.tagging("modnet", arg)
