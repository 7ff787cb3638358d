"""python -m mirjax.main --config=configs/sincnet.py --workdir=workdirs/sincnet

SincNet music tagging: learnable sinc band-pass filter bank (Ravanelli & Bengio, 2018),
band envelopes pooled to frames, log-compressed -> short-chunk CNN.

  python -m mirjax.main --config=configs/sincnet.py:smoke --workdir=/tmp/smoke

The argument is a data protocol: "smoke", "mtat", "mtat_small", "gtzan" or none
(mirjax/config.py).
"""
from mirjax import config as base, models


def get_config(arg=None):
  words = base.words(arg, base.PROTOCOLS, "configs/sincnet.py")
  c = base.base(models.default_config("sincnet", size="cpu"))
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
  return c
