"""python -m mirjax.main --config=configs/rawcnn.py --workdir=workdirs/rawcnn

Dieleman & Schrauwen, "End-to-end learning for music audio" (ICASSP 2014): a strided
convolution on raw audio, its outputs the channels of a 1-D CNN over time.

  python -m mirjax.main --config=configs/rawcnn.py:featpool --workdir=workdirs/rawcnn_featpool
  python -m mirjax.main --config=configs/rawcnn.py:mel,1024_512 --workdir=workdirs/melcnn1d_1024_512
  python -m mirjax.main --config=configs/rawcnn.py:shortchunk --workdir=workdirs/rawcnn_shortchunk
  python -m mirjax.main --config=configs/rawcnn.py:mtat --workdir=workdirs/rawcnn_mtat
  python -m mirjax.main --config=configs/rawcnn.py:smoke --workdir=/tmp/smoke

The argument is comma-separated words:
  (none)       the paper's raw model: 128 filters of 256 samples, stride 256 (16 ms at
               16 kHz) -> two 1-D convs of 32 x 8 + max-pool 4 over time -> dense 100 ->
               logits (mirjax/models/dieleman.py)
  featpool     feature pooling: 4 x 128 filters, each output the L2 norm of 4 of them
  mel          the spectrogram counterpart: a log-mel with window = first-layer length,
               hop = stride and 128 bands (as many as the raw filters), same back-end
  L_S          first-layer length L and stride S in samples, e.g. 1024_512 (the grid of
               configs/rawgrid.py)
  shortchunk   the 2-D short-chunk CNN back-end instead (this file's model before the 1-D
               back-end; it convolves across the filter index)
  smoke, mtat, mtat_small, gtzan   a shared data protocol (mirjax/config.py)
"""
from mirjax import config as base, models

MODEL_WORDS = ("featpool", "mel", "shortchunk")
FEATURE_POOL = 4  # filters per L2-pooled group of the "featpool" variant
N_FEATURES = 128  # learned filters, or mel bands, per frame


def _length_stride(word):
  """(L, S) of a word "L_S", or None."""
  parts = word.split("_")
  return tuple(map(int, parts)) if len(parts) == 2 and all(p.isdigit() for p in parts) else None


def get_config(arg=None):
  given = [w for w in (arg or "").split(",") if w]
  grid = [_length_stride(w) for w in given if _length_stride(w)]
  words = base.words(",".join(w for w in given if not _length_stride(w)),
                     base.PROTOCOLS + MODEL_WORDS, "configs/rawcnn.py")
  if len(grid) > 1:
    raise ValueError(f"config argument {arg!r}: name at most one L_S")
  frontend = "logmel" if "mel" in words else "rawconv"
  length, stride = grid[0] if grid else (256, 256)
  pool = FEATURE_POOL if "featpool" in words else 1
  model = models.dieleman_config(frontend, length, stride, N_FEATURES, feature_pool=pool)
  if "shortchunk" in words:  # the 2-D back-end every tagging config has
    model.backend = models.default_config(frontend, size="cpu").backend
  c = base.base(model)
  # The experiment on the embedded default data: about 10 minutes on a 2-core CPU.
  c.data.crop_seconds = 3.0  # training crops and evaluation chunks, seconds
  c.train.batch_size = 16  # global batch
  c.train.num_steps = 2000
  c.train.eval_every = 500
  c.train.checkpoint_every = 250
  c.optim.learning_rate = 1e-3  # AdamW's peak after a linear warm-up, then cosine decay to 0
  c.optim.warmup_steps = 100
  # ":smoke", ":mtat", ":mtat_small" or ":gtzan": a shared data protocol (mirjax/config.py)
  return base.protocol(c, words)
