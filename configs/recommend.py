"""python -m mirjax.main --config=configs/recommend.py --workdir=workdirs/recommend

Content-based recommendation of cold-start songs ("Deep content-based music
recommendation", van den Oord, Dieleman & Schrauwen, NIPS 2013; mirjax/jobs/recommend.py):
SIMULATED listeners over the embedded clips, WMF of their plays, a regressor from each
clip's content to its song's factors, and the held-out users' rankings of the held-out
songs scored by mAP@500 and AUC against the WMF upper bound, popularity and chance.

  python -m mirjax.main --config=configs/recommend.py:smoke --workdir=/tmp/recommend_smoke

The argument is comma-separated words:
  smoke        the smoke data and a few hundred users: the whole pipeline in seconds
  cholesky     exact WMF solves instead of conjugate gradients
  log          confidence 1 + alpha log(1 + r / eps) instead of 1 + alpha r
"""
import ml_collections

from mirjax import config as base, models
from mirjax.errors import ConfigError

WORDS = ("smoke", "cholesky", "log")


def recommend_config() -> ml_collections.ConfigDict:
  """The listeners, the factorisation, the content features and the regressors."""
  r = ml_collections.ConfigDict()
  r.n_users = 5000  # simulated listeners
  r.seeds = (0, 1, 2)  # each draws its listeners, test users, WMF start and regressor fits
  r.test_user_fraction = 0.2  # users held out: their plays of cold songs are the ground truth
  r.factors = 32  # WMF latent factors
  r.reg = 1.0  # WMF l2 weight (Hu et al.'s lambda)
  r.alpha = 2.0  # confidence 1 + alpha r (or 1 + alpha log(1 + r / eps))
  r.confidence = "linear"  # "linear" or "log"
  r.eps = 1.0  # the log confidence's scale
  r.sweeps = 15  # ALS sweeps
  r.solver = "cg"  # "cg" (3 conjugate-gradient steps per row) or "cholesky"
  r.cg_steps = 3
  r.k = 500  # mAP@k
  r.methods = ("wmf_upper_bound", "linear", "mlp", "popularity", "random")
  r.n_fft, r.hop_length, r.n_mels = 1024, 512, 64  # the log-mel statistics' spectrogram
  r.batch_clips = 64  # clips per batch while computing features
  r.valid_fraction = 0.1  # warm songs that choose the regressors' weight decay
  r.l2_grid = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
  r.probe_steps = 1000  # full-batch Adam steps of each regressor
  r.probe_lr = 1e-2
  r.probe_hidden = 256  # the MLP regressor's hidden units
  return r


def get_config(arg=None):
  flags = [w for w in (arg or "").split(",") if w]
  unknown = [w for w in flags if w not in WORDS]
  if unknown or len(set(flags)) != len(flags):
    raise ConfigError(f"configs/recommend.py: config argument {arg!r}: {unknown or flags} unknown or "
                      f"repeated; the words are {list(WORDS)}")
  c = base.base(models.mlp_config(hidden=256, dropout=0.0))
  c.job = "recommend"
  c.recommend = recommend_config()
  c.data.crop_seconds = 4.0  # audio analysed per clip, seconds (from its start)
  c.train.batch_size = 32  # a regressor the train job trains: its batch, steps and rate
  c.train.num_steps = 600
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 50
  if "smoke" in flags:
    base.smoke(c)
    c.data.crop_seconds = 3.0
    r = c.recommend
    r.seeds = (0,)
    r.n_users, r.factors, r.sweeps, r.n_mels, r.batch_clips = 300, 8, 4, 16, 16
    r.l2_grid, r.probe_steps, r.probe_hidden = (1e-4, 1e-2), 100, 32
  if "cholesky" in flags:
    c.recommend.solver = "cholesky"
  if "log" in flags:
    c.recommend.confidence = "log"
  return c
