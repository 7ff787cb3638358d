"""python -m mirjax.main --config=configs/melcnn.py --workdir=workdirs/melcnn

Log-mel + short-chunk CNN music tagging (Won et al., 2020): the fixed front-end baseline.

  python -m mirjax.main --config=configs/melcnn.py:smoke --workdir=/tmp/smoke
  python -m mirjax.main --config=configs/melcnn.py:mtat --config.data.manual_dir=/data/magnatagatune --workdir=workdirs/melcnn_mtat

":mtat" is Won et al.'s protocol at their published size (7 blocks of 128-512 channels,
dense 512, 128 mel bands; mirjax/config.py won2020); ":mtat_small" the same protocol with
the CPU-sized back-end; ":gtzan" GTZAN genre classification; ":smoke" seconds, for tests.
"""
from mirjax import config as base, models


def get_config(arg=None):
  words = base.words(arg, base.PROTOCOLS, "configs/melcnn.py")
  c = base.base(models.default_config("logmel", size="cpu"))
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
