"""python -m mirjax.main --config=configs/generate.py:lstm --workdir=workdirs/lstm

Structured music generation ("Conditioning Deep Generative Raw Audio Models for Structured
Automatic Music", Manzelli, Thakkar, Siahkamari & Kulis, ISMIR 2018, arXiv:1806.09905):
an LSTM language model over event tokens (note-on, note-off, 10 ms time shifts, velocity;
mirjax/data/symbolic.py) of the music21 pieces the embedded audio renders, split the same
way by piece, and a WaveNet conditioned on the piano roll (mirjax/models/wavenet.py), each
trained by the train job on next-token (next-sample) cross-entropy; the validation and
test splits report perplexity and bits per token (bits per sample).

  python -m mirjax.main --config=configs/generate.py:lstm,smoke --workdir=/tmp/lstm_smoke
  python -m mirjax.main --config=configs/generate.py:wavenet --workdir=workdirs/wavenet
  # the WaveNet's output as a discretised mixture of 10 logistics instead of a 256-way softmax
  python -m mirjax.main --config=configs/generate.py:wavenet --config.task.output=logistic_mixture --workdir=workdirs/wavenet_mol
  python -m mirjax.main --config=configs/generate.py:pipeline --workdir=workdirs/generate
  python -m mirjax.main --config=configs/generate.py:pipeline,smoke --workdir=/tmp/generate_smoke
  # your own MIDI files (a piece's style is its first sub-folder)
  python -m mirjax.main --config=configs/generate.py:lstm,style --config.data.name=midi --config.data.manual_dir=/data/midi --workdir=workdirs/lstm_midi

The argument is comma-separated words:
  lstm     the symbolic model (the default)
  style    condition the LSTM on the piece's style (its corpus composer, or sub-folder)
  wavenet  the audio model: a WaveNet conditioned on the piano roll, trained on the embedded
           clips without drums rendered again with their rolls (data "aligned")
  pipeline both models trained (or reused), then pieces sampled from the LSTM, rendered by
           the WaveNet from their piano rolls, written (MIDI, WAV, picture) and measured
  smoke    the smoke pieces and tiny models: the whole run in seconds
"""
import ml_collections

from mirjax import config as base, models
from mirjax.errors import ConfigError

WORDS = ("lstm", "style", "wavenet", "pipeline", "smoke")


def wavenet(flags):
  """The conditioned WaveNet on the aligned (piano roll, audio) clips."""
  c = base.base(models.wavenet_config(stacks=2, layers_per_stack=10, residual=32, gate=32, skip=64))
  c.data.name = "aligned"
  c.data.hop = 128  # 125 roll frames a second at 16 kHz
  c.data.crop_seconds = 0.256  # 4,096 samples (32 roll frames) a training example
  c.task.name, c.task.branches = "waveform", ("wavenet",)
  c.train.batch_size = 16
  c.train.num_steps = 500  # about 0.9 passes over the training audio: 11 min on 2 CPU cores
  c.train.eval_every = 100
  c.train.checkpoint_every = 100
  c.train.select_by = "loss"
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 100
  c.eval.batch_size = 64
  if "smoke" in flags:
    base.smoke(c)
    c.data.crop_seconds = 0.064  # 1,024 samples
    c.model.stacks, c.model.layers_per_stack = 1, 4
    c.model.residual, c.model.gate, c.model.skip = 8, 8, 16
  return c


def pipeline(flags):
  """Both models trained (or reused), then pieces generated and measured (mirjax/jobs/generate.py)."""
  c = ml_collections.ConfigDict()
  c.job = "generate"
  c.lstm = get_config(",".join(["lstm"] + [w for w in flags if w in ("style", "smoke")]))
  c.wavenet = get_config(",".join(["wavenet"] + [w for w in flags if w == "smoke"]))
  g = c.generate = ml_collections.ConfigDict()
  g.pieces = 4  # generated at once (a batch)
  g.seconds = 4.0  # of each piece
  g.tokens = 400  # event tokens sampled per piece (decoded, then cut to `seconds`)
  g.temperature = 1.0  # the LSTM's sampling temperature
  g.top_k = 0  # 0: no top-k limit
  g.top_p = 0.95  # nucleus
  g.style = 0  # the style a style-conditioned LSTM is given (an index of the dataset's styles)
  g.wavenet_temperature = 1.0
  g.seed = 0
  g.information_clips = 64  # test clips whose bits per sample are measured under their own / shuffled / empty roll
  g.information_seconds = 1.0  # of each (from its start)
  if "smoke" in flags:
    g.pieces, g.seconds, g.tokens = 2, 0.128, 48
    g.information_clips, g.information_seconds = 4, 0.064
  return c


def get_config(arg=None):
  flags = base.words(arg, WORDS, "configs/generate.py")
  if "pipeline" in flags:
    if "lstm" in flags or "wavenet" in flags:
      raise ConfigError("configs/generate.py: 'pipeline' trains both models; leave out 'lstm' and 'wavenet'")
    return pipeline(flags)
  if "wavenet" in flags:
    if "lstm" in flags or "style" in flags:
      raise ConfigError("configs/generate.py: 'wavenet' and 'lstm' / 'style' are separate models; pick one")
    return wavenet(flags)
  c = base.base(models.lstm_config(width=256, layers=2, dropout=0.1))
  c.data.name = "notes"
  c.data.sequence_length = 256
  c.data.crop_seconds = 1.0  # token examples are whole windows: no audio to crop
  c.task.name, c.task.branches = "language_model", ("lm",)
  c.train.batch_size = 32
  c.train.num_steps = 800  # about 26 epochs of the 974 training windows: 11 min on 2 CPU cores
  c.train.eval_every = 100
  c.train.checkpoint_every = 100
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
