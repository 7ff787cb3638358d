"""ModNet music tagging: fixed mel-spaced band envelopes -> learnable temporal modulation
filter bank ("A Modulation Front-End for Music Audio
Tagging", arXiv:2105.11836) -> short-chunk CNN.

  python -m mirjax.main --config=configs/modnet.py --workdir=workdirs/modnet
  python -m mirjax.main --config=configs/modnet.py:smoke --workdir=/tmp/smoke
  python -m mirjax.main --config=configs/modnet.py:rates --workdir=workdirs/modnet_rates

The argument is comma-separated words: a variant of mirjax.config.tagging ("smoke", "mtat",
"gtzan" or none) and "rates": the modulation-rate analysis (mirjax/jobs/modulation_rates.py:
train, then score the test split with every modulation band kept at a rate proportional
to its bandwidth, per tag); --config.analysis.trained=WORKDIR analyses a finished run instead.
"""
from mirjax import config as base


def get_config(arg=None):
  return base.modulation_tagging("modnet", arg)
