"""python -m mirjax.main --config=configs/generate.py:lstm --workdir=workdirs/lstm

Structured music generation ("Conditioning Deep Generative Raw Audio Models for Structured
Automatic Music", Manzelli, Thakkar, Siahkamari & Kulis, ISMIR 2018, arXiv:1806.09905):
the symbolic half, an LSTM language model over event tokens (note-on, note-off, 10 ms time
shifts, velocity; mirjax/data/symbolic.py) of the music21 pieces the embedded audio renders,
split the same way by piece, trained by the train job on next-token cross-entropy; the
validation and test splits report perplexity and bits per token.

  python -m mirjax.main --config=configs/generate.py:lstm,smoke --workdir=/tmp/lstm_smoke
  # your own MIDI files (a piece's style is its first sub-folder)
  python -m mirjax.main --config=configs/generate.py:lstm,style --config.data.name=midi --config.data.manual_dir=/data/midi --workdir=workdirs/lstm_midi

The argument is comma-separated words:
  lstm     the symbolic model (the default)
  style    condition the LSTM on the piece's style (its corpus composer, or sub-folder)
  smoke    the smoke pieces and a tiny model: the whole run in seconds
"""
from mirjax import config as base, models

WORDS = ("lstm", "style", "smoke")


def get_config(arg=None):
  flags = base.words(arg, WORDS, "configs/generate.py")
  c = base.base(models.lstm_config(width=256, layers=2, dropout=0.1))
  c.data.name = "notes"
  c.data.sequence_length = 256
  c.data.crop_seconds = 1.0  # token examples are whole windows: no audio to crop
  c.task.name, c.task.branches = "language_model", ("lm",)
  c.train.batch_size = 32
  c.train.num_steps = 4000
  c.train.eval_every = 500
  c.train.checkpoint_every = 500
  c.train.select_by = "perplexity"
  c.optim.learning_rate = 2e-3
  c.optim.warmup_steps = 100
  c.eval.batch_size = 64
  c.model.condition_on_style = "style" in flags
  if "smoke" in flags:
    base.smoke(c)
    c.data.sequence_length = 32
    c.model.width = 32
  return c
