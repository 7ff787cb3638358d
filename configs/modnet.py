"""python -m mirjax.main --config=configs/modnet.py --workdir=workdirs/modnet

ModNet music tagging: fixed mel-spaced band envelopes -> learnable temporal modulation
filter bank ("A Modulation Front-End for Music Audio Tagging", arXiv:2105.11836) ->
short-chunk CNN.

  python -m mirjax.main --config=configs/modnet.py:smoke --workdir=/tmp/smoke
  python -m mirjax.main --config=configs/modnet.py:rates --workdir=workdirs/modnet_rates

The argument is comma-separated words: a data protocol ("smoke", "mtat", "mtat_small",
"gtzan" or none; mirjax/config.py) and "rates": the modulation-rate analysis
(mirjax/jobs/modulation_rates.py: train, then score the test split with every modulation
band kept at a rate proportional to its bandwidth, per tag); --config.analysis.trained=WORKDIR
analyses a finished run instead.
"""
from mirjax import config as base, models


def get_config(arg=None):
  words = base.words(arg, base.PROTOCOLS + ("rates",), "configs/modnet.py")
  c = base.base(models.default_config("modnet", size="cpu"))
  # The experiment on the embedded default data: about 10 minutes on a 2-core CPU.
  c.data.crop_seconds = 3.0  # training crops and evaluation chunks, seconds
  c.train.batch_size = 16  # global batch
  c.train.num_steps = 2000
  c.train.eval_every = 500
  c.train.checkpoint_every = 250
  c.optim.learning_rate = 1e-3  # AdamW's peak after a linear warm-up, then cosine decay to 0
  c.optim.warmup_steps = 100
  # ":smoke" (seconds, for tests), ":mtat", ":mtat_small" or ":gtzan": shared data protocols
  # (mirjax/config.py), which set their own steps, schedule and evaluation
  base.protocol(c, words)
  return base.modulation_rates(c) if "rates" in words else c
