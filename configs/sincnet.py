"""SincNet music tagging: learnable sinc band-pass filter bank (Ravanelli & Bengio, 2018),
band envelopes pooled to frames, log-compressed -> short-chunk CNN.

  python -m mirjax.main --config=configs/sincnet.py --workdir=workdirs/sincnet
  python -m mirjax.main --config=configs/sincnet.py:smoke --workdir=/tmp/smoke
"""
from mirjax import config as base


def get_config(arg=None):
  return base.tagging("sincnet", arg)
